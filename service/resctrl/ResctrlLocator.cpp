#include "ResctrlLocator.h"

#include "Log.h"
#include "Resctrl.h"

#include <sys/stat.h>

namespace rdtmon {
namespace {

bool hasInfoDir(const std::string& path) {
    struct stat st {};
    return ::stat((path + "/info").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

} // namespace

ResctrlLocator::System ResctrlLocator::realSystem() {
    return System{[] { return Resctrl::findMount(); }, &Resctrl::mount};
}

ResctrlLocator::ResctrlLocator(const Config& cfg, bool mayMount, System sys)
    : path_(cfg.resctrlPath), explicit_(cfg.resctrlPathExplicit), mountOptions_(cfg.mountOptions),
      mayMount_(mayMount), sys_(std::move(sys)) {}

std::optional<std::string> ResctrlLocator::locate(std::string& why) {
    if (explicit_) {
        if (hasInfoDir(path_)) {
            return path_;
        }
    } else if (std::optional<std::string> m = sys_.findMount()) {
        return m;
    }
    if (!mayMount_) {
        why = explicit_ ? path_ + " is not a resctrl mount (no info/) and mounting is off"
                        : "resctrl is not mounted and mounting is off";
        return std::nullopt;
    }
    if (mountTried_) {
        why = mountError_;
        return std::nullopt;
    }
    mountTried_ = true;
    try {
        sys_.mount(path_, mountOptions_);
        log::info("mounted resctrl at " + path_);
    } catch (const Error& e) {
        mountError_ = e.what();
        mountKind_ = e.kind();
        why = mountError_;
        return std::nullopt;
    }
    return path_;
}

} // namespace rdtmon
