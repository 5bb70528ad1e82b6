#pragma once
// The reply functions hiredis builds our replies with (Connection's reader).
#include <hiredis/hiredis.h>

#include "sidecache/redis/connection.hpp"

namespace sidecache::redis {

// hiredis builds every reply of a command connection through these
// functions, straight into our Reply: a bulk string is copied once, from
// hiredis' read buffer into the string that becomes the response body
// (hiredis' own functions would copy it into a redisReply first, and we
// would copy it again).
//
// A reply's root starts with a redisReply header (its type, and the text of
// an error or status), because hiredis reads a reply that arrives with no
// command waiting for it (a server error right after connecting) as a
// redisReply, and so does the AUTH/SELECT callback (queue_setup).
struct Root {
  redisReply head{};
  Reply reply;
};

// create_string, create_array, create_integer, create_nil and free_object.
extern redisReplyObjectFunctions kReplyFunctions;

}  // namespace sidecache::redis
