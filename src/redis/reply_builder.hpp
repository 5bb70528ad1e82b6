#pragma once
// The reply functions hiredis' reader builds our replies with (Connection's stream).
#include <hiredis/hiredis.h>

#include "sidecache/redis/connection.hpp"

namespace sidecache::redis {

// hiredis' reader builds every reply of a command connection through these
// functions, straight into our Reply: a bulk string is copied once, from
// the reader's buffer into the string that becomes the response body
// (hiredis' own functions would copy it into a redisReply first, and we
// would copy it again). A reply's root is a Root, freed by free_object.
struct Root {
  Reply reply;
};

// create_string, create_array, create_integer, create_nil and free_object.
extern redisReplyObjectFunctions kReplyFunctions;

}  // namespace sidecache::redis
