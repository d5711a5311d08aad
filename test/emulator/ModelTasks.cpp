// resctrl-emu: which thread is in which group (see Model.h). A thread is where its last
// write to a tasks file put it, else where its creator was when it started. A tasks read
// uses a /proc scan at most 5 ms old and made after the last change; a counter read one up
// to 1 s old, made without the lock (refreshCounterScan).
#include "Model.h"

#include "Text.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <sys/resource.h>

namespace rdtmon::emu {

// ------------------------------------------------------------ threads and groups

// The scan's thread list stays valid: who is in which group is computed again from it.
void Model::invalidate() {
    lastChange_ = Clock::now();
    membership_.reset();
}

void Model::rewrite(const std::function<void(Assign&)>& f) {
    for (auto& [k, recs] : history_) {
        for (auto& r : recs) {
            f(r.assign);
        }
    }
    for (auto& [k, a] : inherited_) {
        f(a);
    }
}

const ThreadInfo* Model::lookup(pid_t tid) {
    if (scan_) {
        auto it = scan_->byTid.find(tid);
        if (it != scan_->byTid.end()) {
            return &scan_->threads[it->second];
        }
    }
    auto it = extra_.find(tid);
    if (it != extra_.end()) {
        return &it->second;
    }
    auto t = readThread(0, tid);
    if (!t) {
        return nullptr;
    }
    return &extra_.emplace(tid, *t).first->second;
}

// The group of thread x at the moment `child` was created (child null: now).
Assign Model::groupAt(const ThreadInfo& x, const ThreadInfo* child, int depth) {
    auto h = history_.find(TaskKey{x.tid, x.start});
    if (h != history_.end() && !h->second.empty()) {
        if (child == nullptr) {
            return h->second.back().assign;
        }
        for (auto it = h->second.rbegin(); it != h->second.rend(); ++it) {
            // Tie-break: a write in the same clock tick as the child's start counts
            // as before it unless the child was already seen when the write happened.
            if (it->tick < child->start ||
                (it->tick == child->start && it->existed.count(child->tid) == 0)) {
                return it->assign;
            }
        }
    }
    return inheritedOf(x, depth);
}

// The group a thread got at clone/fork: its creator's group at its start time.
Assign Model::inheritedOf(const ThreadInfo& x, int depth) {
    TaskKey key{x.tid, x.start};
    auto m = inherited_.find(key);
    if (m != inherited_.end()) {
        return m->second;
    }
    Assign a;
    pid_t creatorTid = x.tid != x.tgid ? x.tgid : x.ppid;
    if (creatorTid > 0 && depth < 256) {
        const ThreadInfo* creator = lookup(creatorTid);
        if (creator != nullptr && creator->start <= x.start) {
            a = groupAt(*creator, &x, depth + 1);
        }
    }
    inherited_[key] = a;
    return a;
}

// Every thread of the host, read from /proc without the model: a scan is made with mu
// released when a counter read asks for it.
std::unique_ptr<Scan> Model::scanProc() {
    auto s = std::make_unique<Scan>();
    s->when = Clock::now();
    s->startTick = boottimeTicks();
    addHostThreads(*s);
    return s;
}

// Adds to s every thread of the host it does not have yet (a stat read per such thread);
// returns how many.
std::size_t Model::addHostThreads(Scan& s) {
    std::size_t added = 0;
    for (const std::string& p : listDir("/proc")) {
        auto pid = parseNumber(p);
        if (!pid) {
            continue;
        }
        for (const std::string& ts : listDir("/proc/" + p + "/task")) {
            auto tid = parseNumber(ts);
            if (!tid || s.byTid.count(static_cast<pid_t>(*tid)) != 0) {
                continue;
            }
            auto t = readThread(static_cast<pid_t>(*pid), static_cast<pid_t>(*tid));
            if (!t) {
                continue;
            }
            s.byTid[t->tid] = s.threads.size();
            s.threads.push_back(*t);
            ++added;
        }
    }
    return added;
}

void Model::installScan(std::unique_ptr<Scan> s) {
    // A thread that started after the scan began may be missing from it although alive: a
    // task write put it in the old scan, keep it.
    if (scan_) {
        for (const ThreadInfo& t : scan_->threads) {
            if (t.start >= s->startTick && s->byTid.count(t.tid) == 0) {
                s->byTid[t.tid] = s->threads.size();
                s->threads.push_back(t);
            }
        }
    }
    // Forget records of threads that are gone (the tid may be recycled); a thread that
    // started after the scan began is not gone.
    std::unordered_set<TaskKey, TaskKeyHash> alive;
    for (auto& t : s->threads) {
        alive.insert(TaskKey{t.tid, t.start});
    }
    auto gone = [&](auto& kv) {
        return kv.first.start < s->startTick && alive.count(kv.first) == 0;
    };
    std::erase_if(history_, gone);
    std::erase_if(inherited_, gone);
    extra_.clear();
    scan_ = std::move(s);
    membership_.reset();
}

// True if a new scan was made, false if the cached one (younger than maxAge) is reused.
// Tasks reads (maxAge kScanReuse) also need a scan begun after the last change of the tree
// or of a task's group; counter reads take any scan young enough.
bool Model::ensureScan(Clock::duration maxAge) {
    auto now = Clock::now();
    if (scan_ && now - scan_->when < maxAge && (maxAge > kScanReuse || scan_->when > lastChange_)) {
        if (maxAge <= kScanReuse) {
            topUpScan();
        }
        return false;
    }
    installScan(scanProc());
    return true;
}

// The kernel's tasks file lists a thread from its first instant: a reused scan gets the
// threads started since it was made (a listing of /proc, a stat read per new thread only).
void Model::topUpScan() {
    if (addHostThreads(*scan_) > 0) {
        membership_.reset();
    }
}

// A scan for counter reads, made without mu (the kernel does no such walk for a counter
// read: the emulator's stand-in must not hold up the calls a real read would not delay).
// A refresh made aside (niced) runs at the lowest CPU weight as well; the first scan, which
// a read waits for, does not, or a saturated machine would hold that read for seconds.
// Null if it failed.
std::unique_ptr<Scan> Model::backgroundScan(bool niced) {
    const auto tid = static_cast<id_t>(::gettid());
    errno = 0;
    const int nice = niced ? ::getpriority(PRIO_PROCESS, tid) : 0;
    niced = niced && errno == 0 && ::setpriority(PRIO_PROCESS, tid, 19) == 0;
    if (holdNextScan_.exchange(false)) {
        std::unique_lock hold(scanHoldMu_);
        scanHeld_ = true;
        scanHoldCv_.wait_for(hold, kMaxTasksWriteHold, [this] { return !scanHeld_; });
        scanHeld_ = false;
    }
    std::unique_ptr<Scan> s;
    try {
        s = scanProc();
    } catch (...) {
        s.reset();
    }
    if (niced) {
        (void)::setpriority(PRIO_PROCESS, tid, nice);
    }
    return s;
}

void Model::refreshCounterScan(std::unique_lock<std::mutex>& lk) {
    if (nextScan_.valid() &&
        nextScan_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
        std::unique_ptr<Scan> s = nextScan_.get();
        if (s && (!scan_ || scan_->when < s->when)) {
            installScan(std::move(s));
        }
    }
    if (scanning_ || (scan_ && Clock::now() - scan_->when < kCounterScanReuse)) {
        return; // fresh enough, or the first scan is being made: use what there is
    }
    if (scan_) {
        // Stale: this read uses it, and a new one is made on the side for the next reads.
        if (!nextScan_.valid()) {
            nextScan_ =
                std::async(std::launch::async, [this] { return backgroundScan(/*niced=*/true); });
        }
        return;
    }
    // None yet: this read waits for the first, made without mu all the same.
    scanning_ = true;
    lk.unlock();
    std::unique_ptr<Scan> s = backgroundScan(/*niced=*/false);
    lk.lock();
    scanning_ = false;
    if (s && (!scan_ || scan_->when < s->when)) {
        installScan(std::move(s));
    }
}

const Membership& Model::membership(Clock::duration maxAge) {
    freshScan_ = ensureScan(maxAge);
    if (membership_) {
        return *membership_;
    }
    auto m = std::make_unique<Membership>();
    m->threads = scan_->threads.size();
    for (const ThreadInfo& t : scan_->threads) {
        Assign a = groupAt(t, nullptr, 0);
        if (!groups_.count(a.ctrl)) {
            a = Assign{};
        }
        if (a.mon != 0 && !groups_.count(a.mon)) {
            a.mon = 0;
        }
        m->ctrlMembers[a.ctrl].push_back(t.tid);
        if (a.mon != 0) {
            m->monMembers[a.mon].push_back(t.tid);
            m->ownCount[a.mon]++;
        } else {
            m->ownCount[a.ctrl]++;
        }
    }
    for (auto& [g, v] : m->ctrlMembers) {
        std::sort(v.begin(), v.end());
    }
    for (auto& [g, v] : m->monMembers) {
        std::sort(v.begin(), v.end());
    }
    membership_ = std::move(m);
    return *membership_;
}

// ------------------------------------------------------------ tasks files

CallerNs Model::callerNs(pid_t callerPid) {
    CallerNs ns;
    if (callerPid <= 0) {
        return ns;
    }
    auto ino = pidNsInode(callerPid);
    if (!ino || *ino == selfNs_) {
        return ns;
    }
    auto status = readSmallFile("/proc/" + std::to_string(callerPid) + "/status");
    if (!status) {
        return ns;
    }
    auto nspid = statusLine(*status, "NSpid");
    if (nspid.size() < 2) {
        return ns;
    }
    ns.foreign = true;
    ns.inode = *ino;
    ns.level = nspid.size() - 1;
    return ns;
}

std::string Model::tasksContent(GroupId g, pid_t callerPid) {
    const Membership& m = membership();
    const Group& grp = groups_.at(g);
    const auto& members = grp.ctrl ? m.ctrlMembers : m.monMembers;
    auto it = members.find(g);
    std::string out;
    if (it == members.end()) {
        return out;
    }
    // A reused scan may list threads reaped since: check those still exist.
    bool recheck = !freshScan_;
    CallerNs ns = callerNs(callerPid);
    std::vector<pid_t> ids;
    for (pid_t tid : it->second) {
        if (recheck && ::access(("/proc/" + std::to_string(tid) + "/stat").c_str(), F_OK) != 0) {
            continue;
        }
        if (!ns.foreign) {
            ids.push_back(tid);
        } else if (auto id = idInNamespace(tid, ns)) {
            ids.push_back(*id);
        }
    }
    std::sort(ids.begin(), ids.end());
    for (pid_t id : ids) {
        out += std::to_string(id) + "\n";
    }
    return out;
}

int Model::taskGroups(const std::string& id, pid_t callerPid, std::string& out) {
    const std::optional<long> v = parseNumber(id);
    if (!v || *v <= 0 || *v > INT32_MAX) {
        return -ESRCH;
    }
    pid_t tid = static_cast<pid_t>(*v);
    const CallerNs ns = callerNs(callerPid);
    if (ns.foreign) {
        const std::optional<pid_t> t = translate(tid, ns);
        if (!t) {
            return -ESRCH;
        }
        tid = *t;
    }
    // Read now, not from a scan: the start time tells this thread from an earlier one of
    // the same id, whose records must not count.
    const std::optional<ThreadInfo> info = readThread(0, tid);
    if (!info) {
        return -ESRCH;
    }
    Assign a = groupAt(*info, nullptr, 0);
    if (!groups_.count(a.ctrl)) {
        a = Assign{};
    }
    if (a.mon != 0 && !groups_.count(a.mon)) {
        a.mon = 0;
    }
    out = "res:" + (a.ctrl == kRoot ? std::string("/") : groups_.at(a.ctrl).name) +
          "\nmon:" + (a.mon != 0 ? groups_.at(a.mon).name : std::string()) + "\n";
    return 0;
}

// Maps an id written by a caller in a foreign pid namespace to our tid.
std::optional<pid_t> Model::translate(pid_t id, const CallerNs& ns) {
    for (const std::string& p : listDir("/proc")) {
        if (!parseNumber(p)) {
            continue;
        }
        for (const std::string& t : listDir("/proc/" + p + "/task")) {
            auto tid = parseNumber(t);
            if (!tid) {
                continue;
            }
            auto status = readSmallFile("/proc/" + p + "/task/" + t + "/status");
            if (!status) {
                continue;
            }
            auto nspid = statusLine(*status, "NSpid");
            if (nspid.size() > ns.level && nspid[ns.level] == id) {
                if (auto check = idInNamespace(static_cast<pid_t>(*tid), ns);
                    check && *check == id) {
                    return static_cast<pid_t>(*tid);
                }
            }
        }
    }
    return std::nullopt;
}

int Model::moveTask(GroupId gid, pid_t id, pid_t callerPid, uid_t callerUid, const CallerNs& ns) {
    pid_t tid = id;
    if (id == 0) {
        tid = callerPid;
    } else if (ns.foreign) {
        auto t = translate(id, ns);
        if (!t) {
            lastCmd_ += "No task " + std::to_string(id) + "\n";
            return -ESRCH;
        }
        tid = *t;
    }
    auto info = readThread(0, tid);
    if (!info) {
        lastCmd_ += "No task " + std::to_string(id) + "\n";
        return -ESRCH;
    }
    if (callerUid != 0) {
        auto status = readSmallFile("/proc/" + std::to_string(tid) + "/status");
        auto uids = status ? statusLine(*status, "Uid") : std::vector<long>{};
        if (uids.size() < 3 || (uids[0] != callerUid && uids[2] != callerUid)) {
            lastCmd_ += "No permission to move task " + std::to_string(id) + "\n";
            return -EPERM;
        }
    }
    extra_.erase(tid);
    extra_.emplace(tid, *info);
    const Group& g = groups_.at(gid);
    Assign cur = groupAt(*info, nullptr, 0);
    if (!groups_.count(cur.ctrl)) {
        cur = Assign{};
    }
    Assign next = g.ctrl ? Assign{g.id, 0} : Assign{g.parent, g.id};
    if (!g.ctrl && cur.ctrl != g.parent) {
        lastCmd_ += "Can't move task to different control group\n";
        return -EINVAL;
    }
    if (failTasksAfter_ >= 0) {
        if (failTasksAfter_ == 0) {
            failTasksAfter_ = -1;
            lastCmd_ += "Injected failure for task " + std::to_string(id) + "\n";
            return -failTasksErrno_;
        }
        --failTasksAfter_;
    }
    // Snapshot the threads and children that exist before the move (tie-break).
    Record rec;
    std::string tg = std::to_string(info->tgid);
    for (const std::string& t : listDir("/proc/" + tg + "/task")) {
        if (auto n = parseNumber(t)) {
            rec.existed.insert(static_cast<pid_t>(*n));
            if (auto kids = readSmallFile("/proc/" + tg + "/task/" + t + "/children")) {
                for (const std::string& k : splitWords(*kids)) {
                    if (auto kn = parseNumber(k)) {
                        rec.existed.insert(static_cast<pid_t>(*kn));
                    }
                }
            }
        }
    }
    rec.tick = boottimeTicks();
    rec.assign = next;
    history_[TaskKey{info->tid, info->start}].push_back(std::move(rec));
    if (scan_ && scan_->byTid.count(info->tid) == 0) {
        // Born after the scan: counted from now, not from the next scan.
        scan_->byTid[info->tid] = scan_->threads.size();
        scan_->threads.push_back(*info);
    }
    invalidate();
    return 0;
}

void Model::maybeHoldTasksWrite(std::unique_lock<std::mutex>& lk) {
    if (holdTasksAfter_ < 0) {
        return;
    }
    if (holdTasksAfter_ > 0) {
        --holdTasksAfter_;
        return;
    }
    holdTasksAfter_ = -1;
    tasksWriteHeld_ = true;
    holdCv_.wait_for(lk, kMaxTasksWriteHold, [this] { return !tasksWriteHeld_; });
    tasksWriteHeld_ = false;
}

void Model::maybeHoldCounterRead(std::unique_lock<std::mutex>& lk) {
    if (!holdCounterRead_) {
        return;
    }
    holdCounterRead_ = false;
    counterReadHeld_ = true;
    holdCv_.wait_for(lk, kMaxTasksWriteHold, [this] { return !counterReadHeld_; });
    counterReadHeld_ = false;
}

// Kernel semantics of a write to tasks: ids separated by commas, stop at first error.
int Model::writeTasks(GroupId gid, const std::string& data, pid_t callerPid, uid_t callerUid) {
    lastCmd_.clear();
    CallerNs ns = callerNs(callerPid);
    std::string buf = trim(data);
    size_t pos = 0;
    while (pos < buf.size() && buf[pos] != '\n') {
        size_t comma = buf.find(',', pos);
        std::string tok =
            trim(buf.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        pos = comma == std::string::npos ? buf.size() : comma + 1;
        auto v = parseNumber(tok, 0);
        if (!v || *v > INT32_MAX) {
            lastCmd_ += "Task list parsing error pid " + tok + "\n";
            return -EINVAL;
        }
        if (*v < 0) {
            lastCmd_ += "Invalid pid " + tok + "\n";
            return -EINVAL;
        }
        int r = moveTask(gid, static_cast<pid_t>(*v), callerPid, callerUid, ns);
        if (r < 0) {
            lastCmd_ += "Error while processing task " + tok + "\n";
            return r;
        }
    }
    return 0;
}

} // namespace rdtmon::emu
