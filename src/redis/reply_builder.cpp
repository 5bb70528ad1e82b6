#include "reply_builder.hpp"

#include <algorithm>

namespace sidecache::redis {
namespace {

// The connection whose reader built `task`: its privdata, set on the root
// task from the reader's.
const redisReadTask* root_task(const redisReadTask* task) {
  while (task->parent) task = task->parent;
  return task;
}

Reply& parent_reply(const redisReadTask* task) {
  const redisReadTask* p = task->parent;
  return p->parent ? *static_cast<Reply*>(p->obj) : static_cast<Root*>(p->obj)->reply;
}

void* place(const redisReadTask* task, Reply&& r) {
  if (task->parent) {
    Reply& parent = parent_reply(task);
    // May reallocate past the reserve: that moves only finished siblings,
    // which hiredis no longer points to (it keeps the ancestors of the
    // element being read, never one it has finished).
    parent.elements.push_back(std::move(r));
    return &parent.elements.back();
  }
  return new Root{std::move(r)};
}

void* create_string(const redisReadTask* task, char* str, std::size_t len) {
  Reply r;
  switch (task->type) {
    case REDIS_REPLY_ERROR:
      r.status = Reply::Status::error;
      r.error.assign(str, len);
      break;
    case REDIS_REPLY_STRING: {
      r.status = Reply::Status::value;
      // The split applies to a bulk string on its own or first in an array
      // (MGET's value, the begin script's value).
      std::size_t split = 0;
      if (!task->parent || (task->idx == 0 && !task->parent->parent))
        split = static_cast<const Connection*>(root_task(task)->privdata)->reply_split();
      std::size_t n = std::min({split, len, r.head.size()});
      std::copy(str, str + n, r.head.begin());
      r.head_len = n;
      r.value.assign(str + n, len - n);
      break;
    }
    default:  // status
      r.status = Reply::Status::ok;
      r.value.assign(str, len);
      break;
  }
  return place(task, std::move(r));
}

void* create_array(const redisReadTask* task, int elements) {
  Reply r;
  r.status = Reply::Status::ok;
  // The count comes from the server: reserved only up to a sane size (the
  // rest grows as elements arrive), so a broken or hostile peer's
  // "*2000000000" is not an allocation of gigabytes at once.
  r.elements.reserve(static_cast<std::size_t>(std::clamp(elements, 0, 1024)));
  return place(task, std::move(r));
}

void* create_integer(const redisReadTask* task, long long value) {
  Reply r;
  r.status = Reply::Status::ok;
  r.integer = value;
  return place(task, std::move(r));
}

void* create_nil(const redisReadTask* task) {
  Reply r;
  r.status = Reply::Status::nil;
  return place(task, std::move(r));
}

void free_object(void* obj) { delete static_cast<Root*>(obj); }  // only roots are ever freed

}  // namespace

redisReplyObjectFunctions kReplyFunctions{&create_string, &create_array, &create_integer, &create_nil, &free_object};

}  // namespace sidecache::redis
