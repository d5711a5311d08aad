#include "ManagerObject.h"

#include "Errors.h"
#include "HandlerErrors.h"
#include "Log.h"
#include "Names.h"
#include "ProcFs.h"
#include "rdtmon/version.h"

#include <algorithm>

#include <memory>

namespace rdtmon {

ManagerObject::ManagerObject(sdbus::IConnection& conn, GroupManager& mgr, CountersReader& reader,
                             CollectionRequest collect)
    : AdaptorInterfaces(conn, kManagerPath), conn_(conn), mgr_(mgr), reader_(reader),
      collect_(std::move(collect)) {
    registerAdaptor();
}

ManagerObject::~ManagerObject() {
    objects_.clear();
    graveyard_.clear();
    unregisterAdaptor();
}

void ManagerObject::publishExisting() {
    for (const GroupRecord& rec : mgr_.groups()) {
        if (objects_.count(rec.id) == 0) {
            objects_.emplace(rec.id, std::make_unique<GroupObject>(conn_, mgr_, reader_, rec));
        }
    }
    for (const GroupRecord& rec : mgr_.waitingContainers()) {
        onWaiting(rec);
    }
}

std::optional<uid_t> ManagerObject::callerUid(const char* method, bool quiet) {
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    try {
        if (msg != nullptr) {
            return msg->getCredsUid();
        }
    } catch (const std::exception& e) {
        if (!quiet) {
            log::warning(std::string(method) +
                         ": cannot read the caller's credentials: " + e.what());
        }
    }
    return std::nullopt;
}

void ManagerObject::refuseUnlessRoot(const char* method, std::optional<uid_t> uid) {
    if (uid == 0u) {
        return;
    }
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    log::warning(std::string(method) + " refused: caller " +
                 (msg != nullptr ? msg->getSender() : std::string("?")) + " (uid " +
                 (uid ? std::to_string(*uid) : std::string("unknown")) + ") is not root");
    throw sdbus::Error(errorName(ErrorKind::AccessDenied),
                       std::string(method) + " is allowed to root only");
}

void ManagerObject::requireRoot(const char* method) {
    refuseUnlessRoot(method, callerUid(method, false));
}

void ManagerObject::requireOurPidNamespace(const char* method) {
    const sdbus::Message* msg = getObject().getCurrentlyProcessedMessage();
    pid_t pid = 0;
    try {
        if (msg != nullptr) {
            pid = msg->getCredsPid();
        }
    } catch (const std::exception& e) {
        log::warning(std::string(method) + ": cannot read the caller's pid: " + e.what());
    }
    if (pid <= 0 || !sharesOurPidNamespace(pid)) {
        throw Error(ErrorKind::InvalidArgument,
                    std::string(method) + " takes a pid of rdtmond's pid namespace, and the " +
                        "caller (pid " + std::to_string(pid) + ") is in another one or gone: " +
                        "its pid would name another process here; call AddContainer with a "
                        "pidfd");
    }
}

void ManagerObject::onCreated(const GroupRecord& rec) {
    auto it = objects_.find(rec.id);
    if (it == objects_.end()) {
        objects_.emplace(rec.id, std::make_unique<GroupObject>(conn_, mgr_, reader_, rec));
    } else {
        it->second->update(rec);
    }
    try {
        emitGroupCreated(rec.id, sdbus::ObjectPath(groupObjectPath(rec.id)));
        getObject().emitPropertiesChangedSignal(kManagerInterface, {"GroupCount"});
    } catch (const std::exception& e) {
        log::warning(log::forContainer(rec.id, std::string("GroupCreated signal: ") + e.what()));
    }
}

void ManagerObject::onWaiting(const GroupRecord& rec) {
    auto it = objects_.find(rec.id);
    if (it == objects_.end()) {
        objects_.emplace(rec.id, std::make_unique<GroupObject>(conn_, mgr_, reader_, rec));
    } else {
        it->second->update(rec);
    }
}

void ManagerObject::onRemoved(const GroupRecord& rec, RemoveReason reason) {
    auto it = objects_.find(rec.id);
    if (it != objects_.end()) {
        graveyard_.push_back(std::move(it->second));
        objects_.erase(it);
    }
    if (holding_) {
        held_.emplace_back(rec.id, reasonName(reason));
        return;
    }
    try {
        emitGroupRemoved(rec.id, reasonName(reason));
        if (!rec.waiting) { // a waiting container was never counted
            getObject().emitPropertiesChangedSignal(kManagerInterface, {"GroupCount"});
        }
    } catch (const std::exception& e) {
        log::warning(log::forContainer(rec.id, std::string("GroupRemoved signal: ") + e.what()));
    }
}

void ManagerObject::releaseSignals() {
    holding_ = false;
    for (const auto& [id, reason] : held_) {
        try {
            emitGroupRemoved(id, reason);
        } catch (const std::exception& e) {
            log::warning(log::forContainer(id, std::string("GroupRemoved signal: ") + e.what()));
        }
    }
    if (!held_.empty()) {
        try {
            getObject().emitPropertiesChangedSignal(kManagerInterface, {"GroupCount"});
        } catch (const std::exception& e) {
            log::warning(std::string("PropertiesChanged: ") + e.what());
        }
    }
    held_.clear();
}

void ManagerObject::onAvailabilityChanged() {
    try {
        getObject().emitPropertiesChangedSignal(kManagerInterface,
                                                {"ResctrlPath", "Supported", "MonFeatures",
                                                 "TelemetryFeatures", "NumRmids", "L3CacheSizes"});
    } catch (const std::exception& e) {
        log::warning(std::string("PropertiesChanged: ") + e.what());
    }
}

void ManagerObject::onCoverageChanged(const std::string& id) {
    auto it = objects_.find(id);
    if (it != objects_.end() && !holding_) {
        it->second->coverageChanged();
    }
}

sdbus::ObjectPath ManagerObject::replyFor(const GroupRecord& rec) {
    auto it = objects_.find(rec.id);
    if (it != objects_.end()) {
        it->second->update(rec);
    }
    return sdbus::ObjectPath(groupObjectPath(rec.id));
}

sdbus::ObjectPath ManagerObject::CreateGroup(const std::string& container_id, const uint32_t& pid) {
    return translated("CreateGroup", container_id, [&] {
        requireRoot("CreateGroup");
        requireOurPidNamespace("CreateGroup");
        return replyFor(mgr_.createGroup(container_id, pid));
    });
}

sdbus::ObjectPath
ManagerObject::CreateContainerGroup(const std::string& container_id, const sdbus::UnixFd& pidfd,
                                    const std::map<std::string, std::string>& labels) {
    return translated("CreateContainerGroup", container_id, [&] {
        requireRoot("CreateContainerGroup");
        return replyFor(mgr_.createGroupForPidfd(container_id, pidfd.get(), labels));
    });
}

std::tuple<sdbus::ObjectPath, std::string>
ManagerObject::AddContainer(const std::string& container_id, const sdbus::UnixFd& pidfd,
                            const std::map<std::string, std::string>& labels) {
    return translated("AddContainer", container_id, [&] {
        requireRoot("AddContainer");
        GroupRecord rec = mgr_.createGroupForPidfd(container_id, pidfd.get(), labels);
        return std::make_tuple(replyFor(rec), std::string(stateName(rec)));
    });
}

std::tuple<sdbus::ObjectPath, std::string>
ManagerObject::AddContainerByPid(const std::string& container_id, const uint32_t& pid,
                                 const uint64_t& start_time,
                                 const std::map<std::string, std::string>& labels) {
    return translated("AddContainerByPid", container_id, [&] {
        requireRoot("AddContainerByPid");
        requireOurPidNamespace("AddContainerByPid");
        GroupRecord rec = mgr_.createGroupForPid(container_id, pid, start_time, labels);
        return std::make_tuple(replyFor(rec), std::string(stateName(rec)));
    });
}

void ManagerObject::RemoveGroup(const std::string& container_id) {
    translated("RemoveGroup", container_id, [&] {
        // Asked once: the caller may leave at any moment.
        const std::optional<uid_t> uid = callerUid("RemoveGroup", true);
        if (!uid) {
            // The caller has left (the poststop hook sends and leaves: docs/architecture.md,
            // "When a container ends"): who it was cannot be asked any more, so the call is
            // only a hint, which never removes the group of a container that still runs.
            mgr_.removeIfEnded(container_id);
            return;
        }
        refuseUnlessRoot("RemoveGroup", uid);
        mgr_.removeGroup(container_id);
    });
}

std::vector<sdbus::Struct<std::string, std::string, uint32_t, uint64_t, sdbus::ObjectPath>>
ManagerObject::ListGroups() {
    return translated("ListGroups", std::string(), [&] {
        std::vector<sdbus::Struct<std::string, std::string, uint32_t, uint64_t, sdbus::ObjectPath>>
            out;
        for (const GroupRecord& rec : mgr_.groups()) {
            out.emplace_back(rec.id, mgr_.groupPath(rec), rec.pid, rec.createdUsec,
                             sdbus::ObjectPath(groupObjectPath(rec.id)));
        }
        return out;
    });
}

std::vector<
    sdbus::Struct<std::string, std::string, uint32_t, uint64_t, std::map<std::string, std::string>>>
ManagerObject::ListRuntimeGroups() {
    return translated("ListRuntimeGroups", std::string(), [&] {
        std::vector<sdbus::Struct<std::string, std::string, uint32_t, uint64_t,
                                  std::map<std::string, std::string>>>
            out;
        Resctrl* r = mgr_.resctrl();
        for (const RuntimeGroup& g : mgr_.runtimeGroups()) {
            out.emplace_back(g.id, r != nullptr ? r->groupPath(MonGroupRef{g.ctrl, g.id}) : "",
                             g.pid, g.createdUsec, g.labels);
        }
        return out;
    });
}

void ManagerObject::GetCounters(sdbus::Result<CountersMap>&& result, std::string container_id) {
    replyCounters(reader_, mgr_, "GetCounters", container_id, std::move(result));
}

void ManagerObject::GetAllCounters(sdbus::Result<uint64_t, std::vector<CountersEntry>>&& result) {
    replyAllCounters(reader_, std::move(result));
}

void ManagerObject::GetAllValues(sdbus::Result<uint64_t, std::vector<ValuesEntry>>&& result) {
    replyAllValues(reader_, std::move(result));
}

std::vector<sdbus::Struct<std::string, std::string, std::string, uint32_t, uint32_t>>
ManagerObject::GetAllCoverage() {
    return translated("GetAllCoverage", std::string(), [&] {
        std::vector<GroupRecord> all = mgr_.groups();
        std::vector<GroupRecord> waiting = mgr_.waitingContainers();
        all.insert(all.end(), waiting.begin(), waiting.end());
        std::sort(all.begin(), all.end(),
                  [](const GroupRecord& a, const GroupRecord& b) { return a.id < b.id; });
        std::vector<sdbus::Struct<std::string, std::string, std::string, uint32_t, uint32_t>> out;
        out.reserve(all.size());
        for (const GroupRecord& rec : all) {
            const Coverage c = rec.waiting ? Coverage{} : mgr_.coverage(rec.id);
            out.emplace_back(rec.id, stateName(rec), rec.cgroup, c.inGroup, c.outside);
        }
        return out;
    });
}

std::tuple<std::string, std::vector<sdbus::Struct<uint32_t, uint32_t, uint32_t>>>
ManagerObject::GetCounterAssignment() {
    return translated("GetCounterAssignment", std::string(), [&] {
        Resctrl* r = mgr_.resctrl();
        if (r == nullptr || !mgr_.supported()) {
            throw Error(ErrorKind::NotSupported, "no resctrl with L3 monitoring");
        }
        const AssignInfo a = r->assignInfo();
        std::vector<sdbus::Struct<uint32_t, uint32_t, uint32_t>> domains;
        if (a.mbmEvent()) {
            for (const auto& [domain, counters] : a.counters) {
                const auto it = a.available.find(domain);
                domains.emplace_back(domain, counters, it == a.available.end() ? 0u : it->second);
            }
        }
        return std::make_tuple(a.mode, std::move(domains));
    });
}

void ManagerObject::GarbageCollect(sdbus::Result<uint32_t>&& result) {
    try {
        translated("GarbageCollect", std::string(), [&] { requireRoot("GarbageCollect"); });
    } catch (const sdbus::Error& e) {
        result.returnError(e);
        return;
    }
    auto shared = std::make_shared<sdbus::Result<uint32_t>>(std::move(result));
    try {
        collect_([shared](unsigned removed, const std::string* error) {
            try {
                if (error != nullptr) {
                    shared->returnError(sdbus::Error(errorName(ErrorKind::Failed), *error));
                } else {
                    shared->returnResults(removed);
                }
            } catch (const std::exception& e) {
                log::warning(std::string("GarbageCollect reply: ") + e.what());
            }
        });
    } catch (const std::exception& e) {
        shared->returnError(sdbus::Error(errorName(ErrorKind::Failed), e.what()));
    }
}

std::string ManagerObject::Version() {
    return RDTMON_VERSION;
}

std::string ManagerObject::ResctrlPath() {
    return safely<std::string>(
        [&] {
            Resctrl* r = mgr_.resctrl();
            return r != nullptr ? r->path() : std::string();
        },
        std::string());
}

bool ManagerObject::Supported() {
    return safely<bool>([&] { return mgr_.supported(); }, false);
}

std::vector<std::string> ManagerObject::MonFeatures() {
    return safely<std::vector<std::string>>(
        [&] {
            Resctrl* r = mgr_.resctrl();
            return r != nullptr ? r->monFeatures() : std::vector<std::string>{};
        },
        {});
}

std::vector<std::string> ManagerObject::TelemetryFeatures() {
    return safely<std::vector<std::string>>(
        [&] {
            Resctrl* r = mgr_.resctrl();
            return r != nullptr ? r->telemetryFeatures() : std::vector<std::string>{};
        },
        {});
}

std::map<uint32_t, uint64_t> ManagerObject::L3CacheSizes() {
    return safely<std::map<uint32_t, uint64_t>>(
        [&] {
            Resctrl* r = mgr_.resctrl();
            return r != nullptr ? r->l3CacheSizes() : std::map<uint32_t, uint64_t>{};
        },
        {});
}

uint32_t ManagerObject::NumRmids() {
    return safely<uint32_t>(
        [&] {
            Resctrl* r = mgr_.resctrl();
            return r != nullptr ? r->numRmids() : 0u;
        },
        0u);
}

uint32_t ManagerObject::GroupCount() {
    return safely<uint32_t>([&] { return static_cast<uint32_t>(mgr_.groupCount()); }, 0u);
}

uint32_t ManagerObject::FreeRmids() {
    return safely<uint32_t>([&] { return mgr_.freeRmids(); }, 0u);
}

uint32_t ManagerObject::CountersContinuous() {
    return mgr_.counterStats().continuous;
}

uint32_t ManagerObject::CountersRotating() {
    return mgr_.counterStats().rotating;
}

uint64_t ManagerObject::CounterCycleUsec() {
    return mgr_.counterStats().cycleUsec;
}

} // namespace rdtmon
