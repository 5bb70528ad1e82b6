// Compiled only by the layering_upward_include test, which expects it to
// fail: the redis module sits below cache, so it cannot see cache's headers.
#include "sidecache/redis/connection.hpp"  // its own module: found
#include "sidecache/cache/store.hpp"       // a module above it: must not be found
