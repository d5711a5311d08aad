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
#include <sys/resource.h>
#include <unistd.h>

namespace rdtmon {
namespace {

bool isGoneErr(int err) {
    return err == ENOENT || err == ENODEV;
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

CountersPass::CountersPass() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
        lim.rlim_cur > 256) {
        budget_ = static_cast<std::size_t>(lim.rlim_cur - 256) / 2;
    } else if (lim.rlim_cur == RLIM_INFINITY) {
        budget_ = 65536;
    }
}

void Resctrl::beginCountersPass(CountersPass& pass) const {
    CountersLayout layout;
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
        layout.domains.push_back(std::move(dom));
        for (const std::string& s : subs) {
            OpenResult sf = openDirComponent(df.fd.get(), s);
            if (sf.err != 0) {
                continue;
            }
            CountersLayout::Domain sub{d + "/" + s, d, s, {}};
            if (listDomain(sf.fd.get(), sub.events, nullptr) == 0) {
                layout.domains.push_back(std::move(sub));
            }
        }
    }
    auto same = [](const CountersLayout& a, const CountersLayout& b) {
        if (a.domains.size() != b.domains.size()) {
            return false;
        }
        for (std::size_t i = 0; i < a.domains.size(); ++i) {
            if (a.domains[i].key != b.domains[i].key ||
                a.domains[i].events != b.domains[i].events) {
                return false;
            }
        }
        return true;
    };
    if (!same(layout, pass.layout_)) {
        pass.files_.clear();
        pass.open_ = 0;
    }
    pass.layout_ = std::move(layout);
    // A CTRL_MON group may have been removed and made anew since: its mon_groups is opened
    // again by name in each pass.
    pass.monGroupsDirs_.clear();
    pass.seen_.clear();

    // Every group with all its files kept from the last pass is read now, the preads in
    // parallel: one after the other, 1,000 groups' 6,000 reads take 6,000 round trips end to
    // end on FUSE. readCountersBulk then takes the numbers; a group with any file failing
    // (removed, or made anew) is opened again by name there, as before.
    std::size_t nFiles = 0;
    for (const CountersLayout::Domain& d : pass.layout_.domains) {
        nFiles += d.events.size();
    }
    struct Job {
        int fd;
        CountersPass::Read* out;
    };
    std::vector<Job> jobs;
    jobs.reserve(pass.open_);
    for (auto& [key, kept] : pass.files_) {
        kept.prefetched =
            nFiles != 0 && kept.fds.size() == nFiles &&
            std::all_of(kept.fds.begin(), kept.fds.end(), [](const UniqueFd& f) { return !!f; });
        if (!kept.prefetched) {
            continue;
        }
        kept.reads.assign(nFiles, CountersPass::Read{});
        for (std::size_t k = 0; k < nFiles; ++k) {
            jobs.push_back(Job{kept.fds[k].get(), &kept.reads[k]});
        }
    }
    pass.pool_.forEach(jobs.size(), [&jobs](std::size_t i) {
        ReadResult r = rereadShort(jobs[i].fd);
        jobs[i].out->err = r.err;
        if (r.err == 0) {
            jobs[i].out->value = parseCounterValue(r.text);
            if (!jobs[i].out->value) {
                jobs[i].out->decimal = parseDecimalValue(r.text);
            }
        }
    });
    pass.prefetched_ = jobs.size();
}

void Resctrl::endCountersPass(CountersPass& pass) const {
    for (auto it = pass.files_.begin(); it != pass.files_.end();) {
        if (pass.seen_.count(it->first) != 0) {
            ++it;
            continue;
        }
        for (const UniqueFd& fd : it->second.fds) {
            pass.open_ -= fd ? 1 : 0;
        }
        it = pass.files_.erase(it);
    }
    pass.monGroupsDirs_.clear();
}

std::optional<Counters> Resctrl::readCountersBulk(CountersPass& pass, const std::string& ctrl,
                                                  const std::string& mon,
                                                  Decimals* decimals) const {
    const std::string shown =
        mon.empty() ? (ctrl.empty() ? path_ : joinPath(path_, ctrl)) : groupPath({ctrl, mon});
    auto fail = [&](const std::string& what, int err) {
        log::debug("resctrl: " + shown + ": " + what + ": " + errnoText(err) + "; left out");
    };
    if (!mon.empty()) {
        validateRef({ctrl, mon});
    } else if (!ctrl.empty()) {
        validateComponent(ctrl, "CTRL_MON group name");
    }
    std::size_t nFiles = 0;
    for (const CountersLayout::Domain& d : pass.layout_.domains) {
        nFiles += d.events.size();
    }
    if (decimals != nullptr) {
        decimals->clear();
    }
    const std::string key = ctrl + "\n" + mon;
    pass.seen_[key] = true;
    CountersPass::Kept& kept = pass.files_[key];
    std::vector<UniqueFd>& fds = kept.fds;
    auto closeAll = [&]() {
        if (decimals != nullptr) {
            decimals->clear(); // a read that failed half-way is done again from the start
        }
        for (UniqueFd& fd : fds) {
            pass.open_ -= fd ? 1 : 0;
            fd.reset();
        }
        fds.resize(nFiles);
        kept.prefetched = false;
    };
    if (fds.size() != nFiles) {
        closeAll();
    }
    auto parseInto = [&](Counters& out, const CountersLayout::Domain& d, const std::string& e,
                         const ReadResult& r) {
        if (auto v = parseCounterValue(r.text)) {
            out[d.key].emplace(e, *v);
        } else if (decimals != nullptr) {
            if (auto x = parseDecimalValue(r.text)) {
                (*decimals)[d.key].emplace(e, *x);
            }
        }
    };

    // Fastest path: every file read in parallel when the pass began.
    if (kept.prefetched) {
        kept.prefetched = false; // once: a second read in the same pass reads again
        Counters out;
        std::size_t k = 0;
        bool ok = true;
        for (const CountersLayout::Domain& d : pass.layout_.domains) {
            for (const std::string& e : d.events) {
                const CountersPass::Read& r = kept.reads[k++];
                if (r.err != 0) {
                    ok = false; // removed, or made anew: open everything again by name
                } else if (r.value) {
                    out[d.key].emplace(e, *r.value);
                } else if (r.decimal && decimals != nullptr) {
                    (*decimals)[d.key].emplace(e, *r.decimal);
                }
            }
        }
        if (ok) {
            return out;
        }
        closeAll();
    }

    // Fast path: every file of the group already open from an earlier pass.
    if (nFiles != 0 && std::all_of(fds.begin(), fds.end(), [](const UniqueFd& f) { return !!f; })) {
        Counters out;
        std::size_t k = 0;
        bool ok = true;
        for (const CountersLayout::Domain& d : pass.layout_.domains) {
            for (const std::string& e : d.events) {
                ReadResult r = rereadShort(fds[k++].get());
                if (r.err != 0) {
                    ok = false; // removed, or made anew: open everything again by name
                    break;
                }
                parseInto(out, d, e, r);
            }
            if (!ok) {
                break;
            }
        }
        if (ok) {
            return out;
        }
        closeAll();
    }

    constexpr int kDirFlags = O_PATH | O_DIRECTORY;
    // The group's mon_data: <root>/mon_data, <root>/<ctrl>/mon_data, or <mon>/mon_data
    // below a mon_groups dir kept for the pass. Directories are opened O_PATH, only to open
    // what is below them.
    OpenResult md;
    if (!mon.empty()) {
        auto it = pass.monGroupsDirs_.find(ctrl);
        if (it == pass.monGroupsDirs_.end()) {
            OpenResult mg = openBeneath(
                root_.get(), ctrl.empty() ? "mon_groups" : ctrl + "/mon_groups", kDirFlags);
            if (mg.err != 0 && !isGoneErr(mg.err)) {
                fail("cannot open its mon_groups", mg.err);
            }
            it = pass.monGroupsDirs_.emplace(ctrl, std::move(mg.fd)).first;
        }
        if (!it->second) {
            return std::nullopt;
        }
        md = openBeneath(it->second.get(), mon + "/mon_data", kDirFlags);
    } else {
        md = openBeneath(root_.get(), ctrl.empty() ? "mon_data" : ctrl + "/mon_data", kDirFlags);
    }
    if (md.err != 0) {
        if (!isGoneErr(md.err)) {
            fail("cannot open mon_data", md.err);
        }
        return std::nullopt;
    }

    // Whether the group is still there, asked once, after something below it was missing:
    // a domain gone (CPU hotplug) is left out, the group gone leaves the group out.
    bool checked = false;
    auto groupGone = [&]() {
        if (checked) {
            return false;
        }
        checked = true;
        if (!mon.empty()) {
            return !monGroupExists({ctrl, mon});
        }
        return !ctrl.empty() && openDirComponent(root_.get(), ctrl).err != 0;
    };

    Counters out;
    std::size_t k = 0;
    for (const CountersLayout::Domain& d : pass.layout_.domains) {
        for (const std::string& e : d.events) {
            UniqueFd& slot = fds[k++];
            OpenResult f = openBeneath(md.fd.get(), d.key + "/" + e, O_RDONLY);
            ReadResult r = f.err != 0 ? ReadResult{f.err, {}} : rereadShort(f.fd.get());
            if (r.err != 0) {
                if (isGoneErr(r.err) && groupGone()) {
                    closeAll();
                    return std::nullopt;
                }
                fail("cannot read mon_data/" + d.key + "/" + e, r.err);
                continue;
            }
            parseInto(out, d, e, r);
            if (pass.open_ < pass.budget_) {
                slot = std::move(f.fd);
                ++pass.open_;
            }
        }
    }
    // Events reading a word leave no key: a domain with none of its events has no entry.
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
