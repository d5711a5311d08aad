// Bulk reading: the counters of many groups in one pass, the CTRL_MON groups, the RMIDs
// held. GetAllCounters reads every group once a scrape, so a group's read does no readdir:
// the domains and event names are learnt once from the default group's mon_data.
#include "Resctrl.h"

#include "Errors.h"
#include "FileIo.h"
#include "Log.h"
#include "ResctrlNames.h"
#include "ResctrlParsers.h"
#include "ResctrlPaths.h"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace rdtmon {
namespace {

bool isGoneErr(int err) {
    return err == ENOENT || err == ENODEV;
}

// A counter file is one short line: one read(2) usually returns all of it, so the read
// that would only confirm the end is skipped when the text ends in a newline.
ReadResult readCounterFile(int dirfd, const std::string& name) {
    OpenResult o = openFileComponent(dirfd, name, O_RDONLY);
    if (o.err != 0) {
        return ReadResult{o.err, {}};
    }
    char buf[64];
    ssize_t n;
    do {
        n = ::read(o.fd.get(), buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return ReadResult{errno, {}};
    }
    ReadResult r;
    r.text.assign(buf, static_cast<std::size_t>(n));
    if (n > 0 && static_cast<std::size_t>(n) < sizeof buf && buf[n - 1] == '\n') {
        return r;
    }
    if (n > 0) {
        ReadResult rest = readAll(o.fd.get());
        r.err = rest.err;
        r.text += rest.text;
    }
    return r;
}

// The event files and (when subs is given) the SNC sub-domain dirs of one mon_data dir.
int listDomain(int dirFd, std::vector<std::string>& events, std::vector<std::string>* subs) {
    int err = forEachEntry(dirFd, [&](const std::string& n, unsigned char t) {
        unsigned char type = entryType(dirFd, n, t);
        if (type == DT_REG) {
            events.push_back(n);
        } else if (type == DT_DIR && subs != nullptr && n.rfind("mon_sub_", 0) == 0) {
            subs->push_back(n);
        }
    });
    std::sort(events.begin(), events.end());
    if (subs != nullptr) {
        std::sort(subs->begin(), subs->end());
    }
    return err;
}

} // namespace

CountersPass Resctrl::beginCountersPass() const {
    CountersPass pass;
    OpenResult md = openDirComponent(root_.get(), "mon_data");
    if (md.err != 0) {
        throwErrno(md.err, "cannot read counters: cannot open " + joinPath(path_, "mon_data"));
    }
    std::vector<std::string> domains;
    int err = forEachEntry(md.fd.get(), [&](const std::string& n, unsigned char t) {
        if (n.rfind("mon_", 0) == 0 && entryType(md.fd.get(), n, t) == DT_DIR) {
            domains.push_back(n);
        }
    });
    if (err != 0) {
        throwErrno(err, "cannot read counters: cannot list " + joinPath(path_, "mon_data"));
    }
    std::sort(domains.begin(), domains.end());
    for (const std::string& d : domains) {
        OpenResult df = openDirComponent(md.fd.get(), d);
        if (df.err != 0) {
            continue; // gone meanwhile (CPU hotplug)
        }
        CountersLayout::Domain dom{d, d, {}, {}};
        std::vector<std::string> subs;
        if (listDomain(df.fd.get(), dom.events, &subs) != 0) {
            continue;
        }
        pass.layout_.domains.push_back(std::move(dom));
        for (const std::string& s : subs) {
            OpenResult sf = openDirComponent(df.fd.get(), s);
            if (sf.err != 0) {
                continue;
            }
            CountersLayout::Domain sub{d + "/" + s, d, s, {}};
            if (listDomain(sf.fd.get(), sub.events, nullptr) == 0) {
                pass.layout_.domains.push_back(std::move(sub));
            }
        }
    }
    return pass;
}

std::optional<Counters> Resctrl::readCountersBulk(CountersPass& pass, const std::string& ctrl,
                                                  const std::string& mon) const {
    const std::string shown =
        mon.empty() ? (ctrl.empty() ? path_ : joinPath(path_, ctrl)) : groupPath({ctrl, mon});
    auto fail = [&](const std::string& what, int err) {
        log::debug("resctrl: " + shown + ": " + what + ": " + errnoText(err) + "; left out");
    };
    // Whether the group is still there, asked only after something below it was missing.
    auto stillThere = [&]() {
        if (!mon.empty()) {
            return monGroupExists({ctrl, mon});
        }
        return ctrl.empty() || openDirComponent(root_.get(), ctrl).err == 0;
    };

    // The group's directory: the root itself, <ctrl>, or <ctrl>/mon_groups/<mon> through a
    // mon_groups dirfd kept for the pass.
    UniqueFd groupFd;
    int groupDir = root_.get();
    if (!mon.empty()) {
        validateRef({ctrl, mon});
        auto it = pass.monGroupsDirs_.find(ctrl);
        if (it == pass.monGroupsDirs_.end()) {
            UniqueFd ctrlFd;
            int base = root_.get();
            int err = 0;
            if (!ctrl.empty()) {
                OpenResult c = openDirComponent(root_.get(), ctrl);
                err = c.err;
                ctrlFd = std::move(c.fd);
                base = ctrlFd.get();
            }
            UniqueFd mgFd;
            if (err == 0) {
                OpenResult m = openDirComponent(base, "mon_groups");
                err = m.err;
                mgFd = std::move(m.fd);
            }
            if (err != 0 && !isGoneErr(err)) {
                fail("cannot open its mon_groups", err);
            }
            it = pass.monGroupsDirs_.emplace(ctrl, std::move(mgFd)).first;
        }
        if (!it->second) {
            return std::nullopt;
        }
        OpenResult g = openDirComponent(it->second.get(), mon);
        if (g.err != 0) {
            if (!isGoneErr(g.err)) {
                fail("cannot open it", g.err);
            }
            return std::nullopt;
        }
        groupFd = std::move(g.fd);
        groupDir = groupFd.get();
    } else if (!ctrl.empty()) {
        validateComponent(ctrl, "CTRL_MON group name");
        OpenResult g = openDirComponent(root_.get(), ctrl);
        if (g.err != 0) {
            if (!isGoneErr(g.err)) {
                fail("cannot open it", g.err);
            }
            return std::nullopt;
        }
        groupFd = std::move(g.fd);
        groupDir = groupFd.get();
    }

    OpenResult md = openDirComponent(groupDir, "mon_data");
    if (md.err != 0) {
        if (!isGoneErr(md.err)) {
            fail("cannot open mon_data", md.err);
        }
        return std::nullopt;
    }

    Counters out;
    UniqueFd domFd; // the current domain's dir, kept for its sub-domains
    std::string domName;
    bool checkedThere = false;
    // A missing piece is a domain gone (left out) unless the whole group is gone.
    auto groupGone = [&]() {
        if (!checkedThere) {
            checkedThere = true;
            return !stillThere();
        }
        return false;
    };
    for (const CountersLayout::Domain& d : pass.layout_.domains) {
        if (d.dir != domName) {
            domName = d.dir;
            OpenResult df = openDirComponent(md.fd.get(), d.dir);
            domFd = std::move(df.fd);
            if (df.err != 0) {
                if (isGoneErr(df.err) && groupGone()) {
                    return std::nullopt;
                }
                fail("cannot open mon_data/" + d.dir, df.err);
            }
        }
        if (!domFd) {
            continue;
        }
        UniqueFd subFd;
        int dirFd = domFd.get();
        if (!d.sub.empty()) {
            OpenResult sf = openDirComponent(domFd.get(), d.sub);
            if (sf.err != 0) {
                if (isGoneErr(sf.err) && groupGone()) {
                    return std::nullopt;
                }
                fail("cannot open mon_data/" + d.key, sf.err);
                continue;
            }
            subFd = std::move(sf.fd);
            dirFd = subFd.get();
        }
        std::map<std::string, uint64_t> events;
        for (const std::string& e : d.events) {
            ReadResult r = readCounterFile(dirFd, e);
            if (r.err != 0) {
                if (isGoneErr(r.err) && groupGone()) {
                    return std::nullopt;
                }
                fail("cannot read mon_data/" + d.key + "/" + e, r.err);
                continue;
            }
            if (auto v = parseCounterValue(r.text)) {
                events.emplace(e, *v);
            }
        }
        if (!events.empty()) {
            out.emplace(d.key, std::move(events));
        }
    }
    return out;
}

std::vector<std::string> Resctrl::listCtrlGroups() const {
    std::vector<std::string> out;
    int err = forEachEntry(root_.get(), [&](const std::string& n, unsigned char t) {
        if (!isReservedResctrlName(n) && entryType(root_.get(), n, t) == DT_DIR) {
            out.push_back(n);
        }
    });
    if (err != 0) {
        throwErrno(err, "cannot list " + path_);
    }
    std::sort(out.begin(), out.end());
    return out;
}

unsigned Resctrl::rmidsInUse() const {
    // The default group's RMID, one per other CTRL_MON group, one per MON group.
    return static_cast<unsigned>(1 + listCtrlGroups().size() + listMonGroups().size());
}

} // namespace rdtmon
