module example.com/sidecache

go 1.19
