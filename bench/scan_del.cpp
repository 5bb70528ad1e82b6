// The article's tenant flush, for comparison: SCAN MATCH <pattern> COUNT 100
// and DEL each batch, until the cursor returns to 0. Prints the keys deleted
// and the milliseconds it took.
//   scan_del HOST PORT PATTERN
#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: scan_del HOST PORT PATTERN\n");
    return 64;
  }
  redisContext* c = redisConnect(argv[1], std::atoi(argv[2]));
  if (!c || c->err) {
    std::fprintf(stderr, "scan_del: cannot connect: %s\n", c ? c->errstr : "out of memory");
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  std::string cursor = "0";
  long long deleted = 0;
  do {
    auto* r = static_cast<redisReply*>(redisCommand(c, "SCAN %s MATCH %s COUNT 100", cursor.c_str(), argv[3]));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      std::fprintf(stderr, "scan_del: SCAN failed\n");
      return 1;
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    redisReply* keys = r->element[1];
    if (keys->elements > 0) {
      std::vector<const char*> args{"DEL"};
      std::vector<size_t> lens{3};
      for (size_t i = 0; i < keys->elements; ++i) {
        args.push_back(keys->element[i]->str);
        lens.push_back(keys->element[i]->len);
      }
      auto* d = static_cast<redisReply*>(redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
      if (d && d->type == REDIS_REPLY_INTEGER) deleted += d->integer;
      freeReplyObject(d);
    }
    freeReplyObject(r);
  } while (cursor != "0");
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("%lld %.2f\n", deleted, ms);
  redisFree(c);
  return 0;
}
