#pragma once

#include "Config.h"
#include "Errors.h"

#include <functional>
#include <optional>
#include <string>

namespace rdtmon {

// Where resctrl is, mounting it when allowed and needed. A path set explicitly (config or
// --resctrl) is used only if it has an info/ dir; otherwise the mount table is searched.
// A mount is attempted at most once: a failure is remembered and given as the reason on
// every later call, so a service without resctrl does not retry mount(2) on each request.
class ResctrlLocator {
public:
    // The system calls it makes; tests replace them.
    struct System {
        std::function<std::optional<std::string>()> findMount;
        std::function<void(const std::string& path, const std::string& options)> mount;
    };
    static System realSystem(); // Resctrl::findMount and Resctrl::mount

    ResctrlLocator(const Config& cfg, bool mayMount, System sys = realSystem());

    // The path to use, or nullopt with why set.
    std::optional<std::string> locate(std::string& why);

    // The kind of the remembered mount failure, if a mount was tried and failed.
    std::optional<ErrorKind> mountFailure() const { return mountKind_; }

private:
    std::string path_;
    bool explicit_;
    std::string mountOptions_;
    bool mayMount_;
    System sys_;
    bool mountTried_ = false;
    std::string mountError_;
    std::optional<ErrorKind> mountKind_;
};

} // namespace rdtmon
