// resctrl-emu: the fuse3 callbacks (see FuseOps.h).
#include "FuseOps.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace rdtmon::emu {
namespace {

Model* gModel = nullptr;
time_t gMountTime = 0;

struct OpenFile {
    Model::Node node;
    std::string data;
    bool have = false;
};
// fh is the OpenFile's address: a read, one per counter of every group in a pass, needs
// no lookup. The map owns them; guarded by gModel->mu.
std::unordered_map<uint64_t, std::unique_ptr<OpenFile>> gOpen;

OpenFile* openFileOf(const fuse_file_info* fi) {
    return reinterpret_cast<OpenFile*>(static_cast<std::uintptr_t>(fi->fh));
}
// With nullpath_ok libfuse gives no path to the calls on an open file or directory (it
// would build one per read): a directory keeps the path it was opened by. Guarded by mu.
std::unordered_map<uint64_t, std::unique_ptr<std::string>> gOpenDirs;

void* opInit(fuse_conn_info*, fuse_config* cfg) {
    // Names and attributes change only through this mount (mkdir, rmdir; modes are fixed),
    // which updates the kernel's caches itself, so the kernel may keep them: without that
    // every path component of every open is a LOOKUP and, with default_permissions, a
    // GETATTR too. Negative entries are not kept: a group made by mkdir must show at once.
    cfg->entry_timeout = 60;
    cfg->attr_timeout = 60;
    cfg->negative_timeout = 0;
    cfg->direct_io = 1;
    cfg->kernel_cache = 0;
    cfg->use_ino = 0;
    cfg->nullpath_ok = 1;
    return nullptr;
}

void fillStat(const Model::Node& n, struct stat* st) {
    std::memset(st, 0, sizeof *st);
    st->st_uid = 0;
    st->st_gid = 0;
    st->st_atime = st->st_mtime = st->st_ctime = gMountTime;
    if (Model::isDir(n.kind)) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | (gModel->isWritableFile(n) ? 0644 : 0444);
        st->st_nlink = 1;
        st->st_size = 0;
    }
}

int opGetattr(const char* path, struct stat* st, fuse_file_info* fi) {
    std::lock_guard lk(gModel->mu);
    if (path == nullptr) { // fstat of an open file (the kernel sends its fh for files only)
        fillStat(openFileOf(fi)->node, st);
        return 0;
    }
    auto n = gModel->resolve(path);
    if (!n) {
        return -ENOENT;
    }
    if (n->kind == Model::Kind::ProcTaskDir || n->kind == Model::Kind::ProcTaskFile) {
        // As under /proc: no such task, no such entry.
        std::string unused;
        if (gModel->taskGroups(n->name, fuse_get_context()->pid, unused) != 0) {
            return -ENOENT;
        }
    }
    fillStat(*n, st);
    return 0;
}

int opOpendir(const char* path, fuse_file_info* fi) {
    std::lock_guard lk(gModel->mu);
    auto p = std::make_unique<std::string>(path);
    fi->fh = reinterpret_cast<std::uintptr_t>(p.get());
    gOpenDirs.emplace(fi->fh, std::move(p));
    return 0;
}

int opReleasedir(const char*, fuse_file_info* fi) {
    std::lock_guard lk(gModel->mu);
    gOpenDirs.erase(fi->fh);
    return 0;
}

int opReaddir(const char*, void* buf, fuse_fill_dir_t filler, off_t, fuse_file_info* fi,
              fuse_readdir_flags) {
    std::vector<std::string> names;
    std::vector<mode_t> modes;
    {
        std::lock_guard lk(gModel->mu);
        const std::string path = *reinterpret_cast<const std::string*>(fi->fh);
        auto n = gModel->resolve(path.c_str());
        if (!n) {
            return -ENOENT;
        }
        if (!Model::isDir(n->kind)) {
            return -ENOTDIR;
        }
        names = gModel->list(*n);
        // The kernel's resctrl (kernfs) fills d_type; without it every reader has to stat
        // each entry, one FUSE round trip apiece (1,000 per collection at 1,000 groups).
        const std::string base = path == "/" ? std::string() : path;
        for (const auto& name : names) {
            auto c = gModel->resolve((base + "/" + name).c_str());
            modes.push_back(c && Model::isDir(c->kind) ? S_IFDIR : S_IFREG);
        }
    }
    filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
    for (std::size_t i = 0; i < names.size(); ++i) {
        struct stat st {};
        st.st_mode = modes[i];
        filler(buf, names[i].c_str(), &st, 0, static_cast<fuse_fill_dir_flags>(0));
    }
    return 0;
}

int opOpen(const char* path, fuse_file_info* fi) {
    std::lock_guard lk(gModel->mu);
    auto n = gModel->resolve(path);
    if (!n) {
        return -ENOENT;
    }
    if (Model::isDir(n->kind)) {
        return -EISDIR;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY && !gModel->isWritableFile(*n)) {
        return -EACCES;
    }
    if (n->kind == Model::Kind::ProcTaskFile) {
        // As /proc/PID: no such task, no such file.
        std::string unused;
        if (gModel->taskGroups(n->name, fuse_get_context()->pid, unused) != 0) {
            return -ENOENT;
        }
    }
    fi->direct_io = 1;
    fi->nonseekable = 0;
    auto of = std::make_unique<OpenFile>(OpenFile{*n, {}, false});
    fi->fh = reinterpret_cast<std::uintptr_t>(of.get());
    gOpen.emplace(fi->fh, std::move(of));
    return 0;
}

int opRead(const char*, char* buf, size_t size, off_t off, fuse_file_info* fi) {
    std::unique_lock lk(gModel->mu);
    OpenFile& of = *openFileOf(fi);
    if (of.node.kind == Model::Kind::CounterFile) {
        gModel->maybeHoldCounterRead(lk); // releases mu while it waits
        gModel->refreshCounterScan(lk);   // and while it scans /proc
    }
    if (of.node.group != 0 && !gModel->groupExists(of.node.group)) {
        return -ENODEV;
    }
    if (off == 0 || !of.have) {
        if (of.node.kind == Model::Kind::ProcTaskFile) {
            // The task may have gone since the open: ESRCH, as the kernel's read gives.
            if (int r = gModel->taskGroups(of.node.name, fuse_get_context()->pid, of.data);
                r != 0) {
                return r;
            }
        } else if (int r = gModel->read(of.node, fuse_get_context()->pid, of.data); r != 0) {
            return r;
        }
        of.have = true;
    }
    if (static_cast<size_t>(off) >= of.data.size()) {
        return 0;
    }
    size_t n = std::min(size, of.data.size() - static_cast<size_t>(off));
    std::memcpy(buf, of.data.data() + off, n);
    return static_cast<int>(n);
}

int opWrite(const char*, const char* buf, size_t size, off_t, fuse_file_info* fi) {
    std::unique_lock lk(gModel->mu);
    // The kernel releases a file only after its last write returned: of outlives the wait.
    const OpenFile& of = *openFileOf(fi);
    if (of.node.kind == Model::Kind::GroupFile && of.node.name == "tasks") {
        gModel->maybeHoldTasksWrite(lk); // releases mu while it waits
    }
    const fuse_context* ctx = fuse_get_context();
    int r = gModel->writeFile(of.node, std::string(buf, size), ctx->pid, ctx->uid);
    return r < 0 ? r : static_cast<int>(size);
}

int opRelease(const char*, fuse_file_info* fi) {
    std::lock_guard lk(gModel->mu);
    gOpen.erase(fi->fh);
    return 0;
}

int opTruncate(const char* path, off_t, fuse_file_info* fi) {
    std::lock_guard lk(gModel->mu);
    if (path == nullptr) { // open(O_TRUNC), ftruncate
        return gModel->isWritableFile(openFileOf(fi)->node) ? 0 : -EACCES;
    }
    auto n = gModel->resolve(path);
    if (!n) {
        return -ENOENT;
    }
    return gModel->isWritableFile(*n) ? 0 : -EACCES;
}

int opMkdir(const char* path, mode_t) {
    std::lock_guard lk(gModel->mu);
    return gModel->mkdir(path);
}

int opRmdir(const char* path) {
    std::lock_guard lk(gModel->mu);
    return gModel->rmdir(path);
}

int opUnlink(const char*) {
    return -EPERM;
}
int opCreate(const char*, mode_t, fuse_file_info*) {
    return -EACCES;
}
int opMknod(const char*, mode_t, dev_t) {
    return -EACCES;
}
int opRename(const char*, const char*, unsigned int) {
    return -EPERM;
}
int opSymlink(const char*, const char*) {
    return -EPERM;
}
int opLink(const char*, const char*) {
    return -EPERM;
}
int opChmod(const char*, mode_t, fuse_file_info*) {
    return -EPERM;
}
int opChown(const char*, uid_t, gid_t, fuse_file_info*) {
    return -EPERM;
}
int opUtimens(const char*, const timespec*, fuse_file_info*) {
    return 0;
}

} // namespace

fuse_operations fuseOperations(Model& model, time_t mountTime) {
    gModel = &model;
    gMountTime = mountTime;
    fuse_operations ops{};
    ops.init = opInit;
    ops.getattr = opGetattr;
    ops.opendir = opOpendir;
    ops.readdir = opReaddir;
    ops.releasedir = opReleasedir;
    ops.open = opOpen;
    ops.read = opRead;
    ops.write = opWrite;
    ops.release = opRelease;
    ops.truncate = opTruncate;
    ops.mkdir = opMkdir;
    ops.rmdir = opRmdir;
    ops.unlink = opUnlink;
    ops.create = opCreate;
    ops.mknod = opMknod;
    ops.rename = opRename;
    ops.symlink = opSymlink;
    ops.link = opLink;
    ops.chmod = opChmod;
    ops.chown = opChown;
    ops.utimens = opUtimens;
    return ops;
}

} // namespace rdtmon::emu
