#ifndef EVINDEX_CLMDB_SHIM_H
#define EVINDEX_CLMDB_SHIM_H
#include <lmdb.h>
#endif
