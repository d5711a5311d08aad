#pragma once
// resctrl-emu: the fuse3 high-level callbacks. Each one takes the model's lock and turns a
// path into Model calls, with the kernel's errno for what resctrl refuses.

#include "Model.h"

#include <fuse.h> // FUSE_USE_VERSION comes from CMakeLists.txt

#include <ctime>

namespace rdtmon::emu {

// The operations serving `model` (one per process: the callbacks find it through a
// global); every inode's times are `mountTime`.
fuse_operations fuseOperations(Model& model, time_t mountTime);

} // namespace rdtmon::emu
