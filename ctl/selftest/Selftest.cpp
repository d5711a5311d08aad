#include "Selftest.h"

#include "ClientError.h"
#include "NodeFacts.h"
#include "SelftestRun.h"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace rdtmon::ctl::selftest {

using client::ClientError;
using client::ClientErrorKind;

namespace {

std::string listed(const std::set<pid_t>& s) {
    std::string out;
    for (pid_t p : s) {
        if (!out.empty()) {
            out += ' ';
        }
        out += std::to_string(p);
    }
    return out.empty() ? "none" : out;
}

// mbm_L3_assignments ("mbm_total_bytes:0=e;1=_", a line per event): a counter ("e") for
// every event on every domain.
bool everyDomainAssigned(const std::string& text) {
    std::istringstream in(text);
    bool any = false;
    for (std::string line; std::getline(in, line);) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            return false;
        }
        std::istringstream doms(line.substr(colon + 1));
        for (std::string d; std::getline(doms, d, ';');) {
            const auto eq = d.find('=');
            if (eq == std::string::npos || d.substr(eq + 1) != "e") {
                return false;
            }
            any = true;
        }
    }
    return any;
}

Check make(const std::string& name, Result r, std::string summary) {
    Check c;
    c.name = name;
    c.result = r;
    c.summary = std::move(summary);
    return c;
}

// The checks on one process's group, in order: each needs the one before.
class GroupChecks {
public:
    GroupChecks(Run& run, std::vector<Check>& out, const Callbacks& cb)
        : run_(run), out_(out), cb_(cb) {}

    void all() {
        main_ = std::make_unique<TestProcess>(TestProcessOptions{3, {}, 0}, run_.interrupt);
        TestProcess& p = *main_;
        id_ = run_.idFor("main");
        if (!create(p)) {
            skip({"threads-moved", "children-inherit", "counters-readable"});
            if (!run_.node.assignMode.empty() && run_.node.assignMode == "mbm_event") {
                skip({"counter-assignment"});
            }
            return;
        }
        threadsMoved(p);
        childrenInherit(p);
        countersReadable();
        if (run_.node.assignMode == "mbm_event") {
            assignment();
        }
        otherClos(p);
        run_.interrupt.check();
        loadAndRemove(p);
    }

private:
    void emit(Check c) {
        if (cb_.check) {
            cb_.check(c);
        }
        out_.push_back(std::move(c));
    }
    void skip(std::initializer_list<const char*> names) {
        for (const char* n : names) {
            emit(make(n, Result::Fail, "not run: the group could not be made"));
        }
    }

    bool create(TestProcess& p) {
        createdAt_ = std::chrono::steady_clock::now();
        std::string state;
        Check c = make("create-group", Result::Fail, "");
        try {
            path_ = run_.add(id_, p, state);
        } catch (const ClientError& e) {
            if (e.kind() == ClientErrorKind::NotRunning) {
                throw;
            }
            c.summary = std::string("AddContainer failed: ") + e.what();
            emit(c);
            return false;
        }
        c.evidence.push_back("AddContainer(" + id_ + ", pidfd of " + std::to_string(p.pid()) +
                             ") answered state " + state);
        if (state != "active") {
            c.summary = "no RMID was free: rdtmond queued the self-test's process (free one, "
                        "or run it when fewer containers are monitored)";
            emit(c);
            return false;
        }
        const bool exists = !path_.empty() && dirExists(path_);
        c.evidence.push_back("ListGroups gives " + (path_.empty() ? "no path" : path_) +
                             (exists ? ", which exists" : ", which does not exist"));
        if (!exists) {
            c.summary = "rdtmond answered active but there is no group directory";
            emit(c);
            return false;
        }
        c.result = Result::Pass;
        c.summary = "group " + path_ + " made for pid " + std::to_string(p.pid());
        emit(c);
        return true;
    }

    void threadsMoved(TestProcess& p) {
        const std::vector<pid_t> threads = p.threads();
        const std::set<pid_t> tasks = readTasks(path_ + "/tasks");
        std::set<pid_t> missing;
        for (pid_t t : threads) {
            if (tasks.count(t) == 0) {
                missing.insert(t);
            }
        }
        Check c = make("threads-moved", missing.empty() ? Result::Pass : Result::Fail, "");
        c.summary = std::to_string(threads.size() - missing.size()) + " of " +
                    std::to_string(threads.size()) + " threads of pid " + std::to_string(p.pid()) +
                    " are in the group";
        c.evidence.push_back("threads (/proc/" + std::to_string(p.pid()) +
                             "/task): " + listed({threads.begin(), threads.end()}));
        c.evidence.push_back(path_ + "/tasks: " + listed(tasks));
        emit(c);
    }

    void childrenInherit(TestProcess& p) {
        Check c = make("children-inherit", Result::Fail, "");
        const pid_t thread = p.startThread();
        const pid_t child = p.forkChild();
        const std::set<pid_t> tasks = readTasks(path_ + "/tasks");
        const bool t = tasks.count(thread) != 0;
        const bool k = tasks.count(child) != 0;
        c.evidence.push_back("thread " + std::to_string(thread) + " started after the move: " +
                             (t ? "in the group" : "not in the group"));
        c.evidence.push_back("child " + std::to_string(child) +
                             " forked after the move, then exec'd sleep: " +
                             (k ? "in the group" : "not in the group"));
        c.evidence.push_back("rdtmond follows no cgroup for self-test groups: the kernel alone "
                             "put them there");
        c.result = t && k ? Result::Pass : Result::Fail;
        c.summary = t && k ? "a new thread and a forked, exec'd child joined the group"
                           : "a task made after the move is not in the group";
        emit(c);
    }

    // The kernel's text of each counter file of the group, domain (as GetCounters names
    // it) -> event -> text.
    std::map<std::string, std::map<std::string, std::string>> kernelCounters() const {
        std::map<std::string, std::map<std::string, std::string>> out;
        const std::string base = path_ + "/mon_data/";
        auto files = [&](const std::string& key) {
            const std::string dir = base + key;
            if (DIR* d = ::opendir(dir.c_str())) {
                while (const dirent* e = ::readdir(d)) {
                    const std::string n = e->d_name;
                    if (n[0] == '.' || n.rfind("mon_sub_L3_", 0) == 0) {
                        continue;
                    }
                    out[key][n] = readText(dir + "/" + n);
                }
                ::closedir(d);
            }
        };
        for (const std::string& dom : run_.node.l3Domains) {
            files(dom);
            const std::string dir = base + dom;
            if (DIR* d = ::opendir(dir.c_str())) {
                while (const dirent* e = ::readdir(d)) {
                    if (std::string(e->d_name).rfind("mon_sub_L3_", 0) == 0) {
                        files(dom + "/" + e->d_name);
                    }
                }
                ::closedir(d);
            }
        }
        return out;
    }

    void countersReadable() {
        Check c = make("counters-readable", Result::Fail, "");
        unsigned read = 0;
        unsigned unassigned = 0;
        std::vector<std::string> bad;
        // A counter of a new RMID may read Unavailable for a moment: a few tries.
        for (int attempt = 0; attempt < 5; ++attempt) {
            read = unassigned = 0;
            bad.clear();
            const client::Counters counters = run_.bus.counters(id_);
            for (const auto& [dom, events] : kernelCounters()) {
                for (const auto& [event, text] : events) {
                    const auto d = counters.find(dom);
                    const bool served = d != counters.end() && d->second.count(event) != 0;
                    if (text == "Unassigned") {
                        ++unassigned; // counter-assignment's business
                    } else if (served) {
                        ++read;
                    } else {
                        bad.push_back(dom + "/" + event + ": the kernel reads \"" + text +
                                      "\", GetCounters has no value");
                    }
                }
            }
            if (bad.empty() && read > 0) {
                break;
            }
            run_.interrupt.check();
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        c.evidence = bad;
        c.evidence.insert(
            c.evidence.begin(),
            std::to_string(read) + " counters read through GetCounters on " +
                std::to_string(run_.node.l3Domains.size()) + " L3 domain(s)" +
                (unassigned ? ", " + std::to_string(unassigned) + " without a counter (Unassigned)"
                            : std::string()));
        c.result = bad.empty() && read > 0 ? Result::Pass : Result::Fail;
        c.summary = c.result == Result::Pass ? "every counter of every domain reads a value"
                                             : "some counters read no value";
        emit(c);
    }

    // mbm_event mode: rdtmond gives the group counters on every domain, and a counter
    // given to it starts from zero (the kernel resets it at assignment).
    void assignment() {
        Check c = make("counter-assignment", Result::Fail, "");
        const std::string file = path_ + "/mbm_L3_assignments";
        std::string text;
        bool all = false;
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        while (std::chrono::steady_clock::now() < until) {
            text = readText(file);
            all = everyDomainAssigned(text);
            if (all) {
                break;
            }
            run_.interrupt.check();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        const double age = secondsSince(createdAt_);
        c.evidence.push_back(file + ": " + (text.empty() ? "unreadable" : text));
        if (!all) {
            const auto a = run_.bus.counterAssignment();
            if (a && a->rotating && *a->rotating > 0) {
                c.result = Result::NotApplicable;
                c.summary = "groups take turns at the counters (" + std::to_string(*a->rotating) +
                            " rotating); this one's turn did not come within 3 s";
            } else {
                c.summary = "the group got no counter on every domain within 3 s";
            }
            emit(c);
            return;
        }
        // At most what the group could move since it was made, at a bandwidth above any
        // part's: a counter kept from another group would read its whole past.
        constexpr double kMaxBytesPerSecond = 200e9;
        const double bound = kMaxBytesPerSecond * age;
        bool reset = true;
        for (const auto& [dom, events] : kernelCounters()) {
            for (const auto& [event, text2] : events) {
                if (event.rfind("mbm_", 0) != 0 || dom.find('/') != std::string::npos) {
                    continue;
                }
                const double v = std::strtod(text2.c_str(), nullptr);
                c.evidence.push_back(dom + "/" + event + " " + text2 + " bytes, " +
                                     std::to_string(age) + " s after the group was made");
                reset = reset && v <= bound;
            }
        }
        c.evidence.push_back("a counter not reset would read more than " +
                             std::to_string(static_cast<uint64_t>(bound)) +
                             " bytes (200 GB/s since the group was made)");
        c.result = reset ? Result::Pass : Result::Fail;
        c.summary = reset ? "counters assigned on every domain, counting from zero"
                          : "a counter given to the group did not start from zero";
        emit(c);
    }

    // A thread in another CLOS is refused by the kernel (a MON group takes only tasks of
    // its parent CTRL_MON group) and rdtmond leaves it there and makes nothing.
    void otherClos(TestProcess& p) {
        Check c = make("other-clos-refused", Result::NotApplicable, "");
        const std::string mine = ctrlOf(path_);
        std::string other;
        for (const std::string& clos : run_.node.closes) {
            if (clos != mine) {
                other = clos;
                break;
            }
        }
        if (other.empty()) {
            c.summary = "only one CLOS (" + mine + "); the self-test makes none";
            emit(c);
            return;
        }
        (void)p;
        other_ = std::make_unique<TestProcess>(TestProcessOptions{1, {}, 0}, run_.interrupt);
        TestProcess& q = *other_;
        const pid_t t = q.threads().back();
        const std::string base = run_.node.resctrlPath == "/" ? "" : run_.node.resctrlPath;
        const std::string otherTasks = base + (other == "/" ? "" : other) + "/tasks";
        if (!writeTid(otherTasks, t)) {
            c.result = Result::Fail;
            c.summary = "cannot put a thread of the self-test into CLOS " + other;
            c.evidence.push_back("write " + std::to_string(t) + " to " + otherTasks + ": " +
                                 std::strerror(errno));
            emit(c);
            return;
        }
        const std::string id = run_.idFor("clos");
        std::string state;
        std::string error;
        try {
            run_.add(id, q, state);
        } catch (const ClientError& e) {
            if (e.kind() == ClientErrorKind::NotRunning) {
                throw;
            }
            error = e.what();
        }
        const bool inOther = readTasks(otherTasks).count(t) != 0;
        const std::string groupDir = base + (mine == "/" ? "" : mine) + "/mon_groups/" + id;
        const bool leftover = dirExists(groupDir);
        c.evidence.push_back("thread " + std::to_string(t) + " of pid " + std::to_string(q.pid()) +
                             " put into CLOS " + other + ", the process itself in " + mine);
        c.evidence.push_back(error.empty() ? "AddContainer answered " + state
                                           : "AddContainer failed: " + error);
        c.evidence.push_back("thread " + std::to_string(t) + (inOther ? " still" : " no longer") +
                             " in " + otherTasks);
        c.evidence.push_back(groupDir + (leftover ? " exists" : " does not exist"));
        const bool ok = !error.empty() && inOther && !leftover;
        if (error.empty()) {
            run_.remove(id);
        }
        c.result = ok ? Result::Pass : Result::Fail;
        c.summary = ok ? "a thread in CLOS " + other + " refused and left there; no group made"
                       : "a thread in another CLOS was not refused and left where it was";
        emit(c);
    }

    void loadAndRemove(TestProcess& p) {
        for (Check& c : loadChecks(run_)) {
            emit(std::move(c));
        }
        Check c = make("remove-group", Result::Fail, "");
        const std::string ctrlTasks = path_.substr(0, path_.rfind("/mon_groups/")) + "/tasks";
        run_.remove(id_);
        const bool gone = !dirExists(path_);
        const std::set<pid_t> back = readTasks(ctrlTasks);
        const bool home = back.count(p.pid()) != 0;
        c.evidence.push_back("RemoveGroup(" + id_ + "): " + path_ +
                             (gone ? " is gone" : " still exists"));
        c.evidence.push_back("pid " + std::to_string(p.pid()) +
                             (home ? " is back in " : " is not in ") + ctrlTasks);
        c.result = gone && home ? Result::Pass : Result::Fail;
        c.summary = gone && home ? "group removed, its tasks back in their CTRL_MON group"
                                 : "the group was not removed cleanly";
        emit(c);
    }

    // "/" or "/NAME" of a group at <resctrl>[/<ctrl>]/mon_groups/<id>.
    std::string ctrlOf(const std::string& groupPath) const {
        const std::string parent = groupPath.substr(0, groupPath.rfind("/mon_groups/"));
        const std::string& root = run_.node.resctrlPath;
        if (parent.size() <= root.size()) {
            return "/";
        }
        return parent.substr(root == "/" ? 0 : root.size());
    }

    static bool writeTid(const std::string& tasks, pid_t t) {
        const int fd = ::open(tasks.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
            return false;
        }
        const std::string s = std::to_string(t) + "\n";
        const bool ok = ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
        const int err = errno;
        ::close(fd);
        errno = err;
        return ok;
    }

    Run& run_;
    std::vector<Check>& out_;
    const Callbacks& cb_;
    std::string id_;
    std::string path_;
    std::chrono::steady_clock::time_point createdAt_;
    // Killed when the checks are destroyed: after their groups are removed.
    std::unique_ptr<TestProcess> main_;
    std::unique_ptr<TestProcess> other_;
};

} // namespace

Report runSelftest(client::BusClient& bus, Interrupt& interrupt, const Callbacks& callbacks) {
    const client::Status status = bus.status();
    if (!status.supported) {
        throw ClientError(ClientErrorKind::Unsupported,
                          "resctrl monitoring is not supported on this node (rdtmond " +
                              status.version + ")");
    }
    Report report;
    report.node = gatherNodeFacts(status);
    Run run(bus, interrupt, report.node);
    prepareLoad(run); // throws Refused before anything is made
    if (callbacks.node) {
        callbacks.node(report.node);
    }
    becomeSubreaper();
    GroupChecks checks(run, report.checks, callbacks);
    try {
        checks.all();
    } catch (const Interrupted& e) {
        report.stopped = e.what();
    } catch (const ClientError& e) {
        report.stopped = e.what();
    } catch (const std::exception& e) {
        report.stopped = e.what();
    }
    // The groups first, then (checks' destructor) their processes: a group whose process
    // is gone is removed by rdtmond's end-of-container path after a grace, not at once.
    report.leftBehind = run.removeAll();
    return report;
}

} // namespace rdtmon::ctl::selftest
