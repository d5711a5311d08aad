// The numbers part of the self-test: a memory stream of known size in a group of its own,
// its counters judged by LoadJudgement (docs/selftest.md, "The load check").
#include "ClientError.h"
#include "LoadJudgement.h"
#include "NodeFacts.h"
#include "Selftest.h"
#include "SelftestRun.h"
#include "StreamLoad.h"

#include <algorithm>
#include <sched.h>
#include <thread>

namespace rdtmon::ctl::selftest {

namespace {

constexpr const char* kSysCpu = "/sys/devices/system/cpu";

Result resultOf(Verdict::Result r) {
    switch (r) {
    case Verdict::Result::Pass:
        return Result::Pass;
    case Verdict::Result::Fail:
        return Result::Fail;
    case Verdict::Result::NotApplicable:
        break;
    }
    return Result::NotApplicable;
}

Check checkOf(const Verdict& v) {
    Check c;
    c.name = "load-" + v.check;
    std::replace(c.name.begin(), c.name.end(), ' ', '-');
    c.result = resultOf(v.result);
    c.summary = v.summary;
    c.evidence = v.evidence;
    return c;
}

std::vector<Check> allFailed(const std::string& why) {
    std::vector<Check> out;
    for (const Verdict& v : loadNotApplicable(why)) {
        Check c = checkOf(v);
        c.result = Result::Fail;
        out.push_back(c);
    }
    return out;
}

} // namespace

void prepareLoad(Run& run) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    ::sched_getaffinity(0, sizeof allowed, &allowed);
    std::vector<unsigned> ids;
    for (const std::string& d : run.node.l3Domains) {
        if (d.rfind("mon_L3_", 0) == 0) {
            ids.push_back(static_cast<unsigned>(std::stoul(d.substr(7))));
        }
    }
    if (ids.empty()) {
        throw Refused("resctrl at " + run.node.resctrlPath + " lists no L3 domain in mon_data");
    }
    run.loadDomain = ids.front();
    // The first domain with CPUs rdtmonctl may run on; none (an emulator's domains need not
    // be the host's caches) leaves the load unpinned on the first.
    for (unsigned id : ids) {
        std::vector<int> cpus;
        for (int c : cpusOfL3Domain(kSysCpu, id)) {
            if (CPU_ISSET(c, &allowed)) {
                cpus.push_back(c);
            }
        }
        if (!cpus.empty()) {
            run.loadDomain = id;
            run.loadCpus = cpus;
            break;
        }
    }
    uint64_t l3 = 0;
    if (const auto it = run.node.l3CacheBytes.find(run.loadDomain);
        it != run.node.l3CacheBytes.end()) {
        l3 = it->second;
    } else if (std::optional<uint64_t> b = l3BytesOfDomain(kSysCpu, run.loadDomain)) {
        l3 = *b;
    }
    run.l3Bytes = l3;
    const std::optional<uint64_t> mem = memAvailableBytes(readText("/proc/meminfo"));
    if (!mem) {
        throw Refused("cannot read MemAvailable from /proc/meminfo");
    }
    run.plan = planLoad(l3, *mem);
    if (!run.plan.refusal.empty()) {
        throw Refused(run.plan.refusal);
    }
}

std::vector<Check> loadChecks(Run& run) {
    TestProcess load(TestProcessOptions{0, run.loadCpus, run.plan.bufferBytes}, run.interrupt);
    const std::string id = run.idFor("load");
    std::string state;
    std::string path;
    try {
        path = run.add(id, load, state);
    } catch (const client::ClientError& e) {
        if (e.kind() == client::ClientErrorKind::NotRunning) {
            throw;
        }
        return allFailed(std::string("the load's group could not be made: ") + e.what());
    }
    if (state != "active") {
        return allFailed("no RMID was free for the load's group");
    }
    LoadObservation obs;
    obs.bufferBytes = run.plan.bufferBytes;
    obs.domain = domainKey(run.loadDomain);
    obs.l3Bytes = run.l3Bytes;
    obs.before = run.bus.counters(id);
    load.startStream(run.plan.passes, kMaxLoadSeconds);
    // The occupancy while lines of the stream are in the cache; the stream takes about a
    // second at a few GB/s.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    obs.during = run.bus.counters(id);
    const StreamRun s = load.waitStream();
    obs.after = run.bus.counters(id);
    obs.passesDone = s.passes;
    run.remove(id);

    std::vector<Check> out;
    const std::string moved =
        "the load read " + bytesText(obs.bufferBytes) + " " + std::to_string(s.passes) +
        " times in " + std::to_string(s.seconds) + " s on " +
        (run.loadCpus.empty() ? std::string("unpinned CPUs") : "CPUs of " + obs.domain);
    for (const Verdict& v : judgeLoad(obs)) {
        Check c = checkOf(v);
        c.evidence.insert(c.evidence.begin(), moved);
        if (run.node.emulated) {
            // Its counters are made up: the arithmetic is shown, not judged.
            c.result = Result::NotApplicable;
            c.summary = "resctrl at " + run.node.resctrlPath + " is " + run.node.fsType +
                        ", which sees no memory traffic (would be: " + v.summary + ")";
        }
        out.push_back(c);
    }
    return out;
}

} // namespace rdtmon::ctl::selftest
