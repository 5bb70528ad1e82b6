#pragma once
// One question to several servers, one after another, until one gives an
// answer that is accepted: where the master is (the sentinels), what the
// slot map is (the cluster's nodes). Each server gets redis.connect_timeout
// + redis.timeout on its own connection, closed afterwards.
#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <string>
#include <vector>

#include "sidecache/config/config.hpp"

struct redisReply;

namespace sidecache::redis {

namespace net = boost::asio;

// `accept(reply)` returns "" when it took the answer, else why not;
// `done("")` after the first accepted answer, `done(why)` (every server's
// reason) when none was. Runs on `ex`.
void ask_each(const net::any_io_executor& ex, std::vector<config::RedisConfig> servers, std::vector<std::string> argv,
              std::function<std::string(const redisReply*)> accept, std::function<void(std::string)> done);

}  // namespace sidecache::redis
