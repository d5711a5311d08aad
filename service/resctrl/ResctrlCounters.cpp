// Counters: reading mon_data of a MON group, every domain and SNC sub-domain.
#include "Resctrl.h"

#include "Errors.h"
#include "FileIo.h"
#include "Log.h"
#include "ProcFs.h"
#include "ResctrlNames.h"
#include "ResctrlParsers.h"
#include "ResctrlPaths.h"

#include <cerrno>
#include <charconv>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <unistd.h>

namespace rdtmon {

Counters Resctrl::readCounters(const MonGroupRef& g) const {
    validateRef(g);
    const std::string gp = groupPath(g);
    UniqueFd gd = openGroupDir(root_.get(), path_, g, gp);
    // ENOENT/ENODEV below mon_data means either the group was removed (NoSuchGroup) or a
    // domain went away (CPU hotplug), which only leaves that domain out.
    auto checkGone = [&](const std::string& what) {
        if (!monGroupExists(g)) {
            throw Error(ErrorKind::NoSuchGroup, "cannot read counters of " + gp +
                                                    ": the group was removed (" + what +
                                                    " vanished)");
        }
    };
    auto isGoneErr = [](int err) { return err == ENOENT || err == ENODEV; };
    OpenResult md = openDirComponent(gd.get(), "mon_data");
    if (md.err != 0) {
        if (isGoneErr(md.err)) {
            checkGone("mon_data");
        }
        throwErrno(md.err, "cannot read counters of " + gp + ": cannot open mon_data");
    }
    const UniqueFd mdFd = std::move(md.fd);

    Counters out;
    // Reads the event files of one (sub-)domain dir; collects the names of sub-domain dirs.
    auto readDomain = [&](int dirFd, const std::string& key, std::vector<std::string>* subdirs) {
        std::vector<std::string> files;
        int err = forEachEntry(dirFd, [&](const std::string& n, unsigned char t) {
            unsigned char type = entryType(dirFd, n, t);
            if (type == DT_REG) {
                files.push_back(n);
            } else if (type == DT_DIR && subdirs != nullptr && n.rfind("mon_sub_", 0) == 0) {
                subdirs->push_back(n);
            }
        });
        if (isGoneErr(err)) {
            checkGone("mon_data/" + key);
            return;
        }
        if (err != 0) {
            throwErrno(err, "cannot read counters of " + gp + ": cannot list mon_data/" + key);
        }
        std::map<std::string, uint64_t> events;
        for (const auto& f : files) {
            ReadResult r = readFileAt(dirFd, f);
            if (r.err != 0) {
                if (isGoneErr(r.err)) {
                    checkGone("mon_data/" + key + "/" + f);
                }
                log::debug("resctrl: " + gp + "/mon_data/" + key + "/" + f + ": " +
                           errnoText(r.err) + "; left out");
                continue;
            }
            if (auto v = parseCounterValue(r.text)) {
                events[f] = *v;
            }
        }
        if (!events.empty()) {
            out[key] = std::move(events);
        }
    };

    std::vector<std::string> domains;
    int err = forEachEntry(mdFd.get(), [&](const std::string& n, unsigned char t) {
        if (n.rfind("mon_", 0) == 0 && entryType(mdFd.get(), n, t) == DT_DIR) {
            domains.push_back(n);
        }
    });
    if (err != 0) {
        if (isGoneErr(err)) {
            checkGone("mon_data");
        }
        throwErrno(err, "cannot read counters of " + gp + ": cannot list mon_data");
    }
    for (const auto& d : domains) {
        OpenResult df = openDirComponent(mdFd.get(), d);
        if (df.err != 0) {
            if (isGoneErr(df.err)) {
                checkGone("mon_data/" + d);
                continue;
            }
            throwErrno(df.err, "cannot read counters of " + gp + ": cannot open mon_data/" + d);
        }
        std::vector<std::string> subs;
        readDomain(df.fd.get(), d, &subs);
        for (const auto& s : subs) {
            OpenResult sf = openDirComponent(df.fd.get(), s);
            if (sf.err != 0) {
                if (isGoneErr(sf.err)) {
                    checkGone("mon_data/" + d + "/" + s);
                    continue;
                }
                throwErrno(sf.err, "cannot read counters of " + gp + ": cannot open mon_data/" + d +
                                       "/" + s);
            }
            readDomain(sf.fd.get(), d + "/" + s, nullptr);
        }
    }
    return out;
}

} // namespace rdtmon
