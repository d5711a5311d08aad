#pragma once

// The D-Bus face of rdtmond: /org/rdtmon1, interfaces org.rdtmon1.Manager and the standard
// ObjectManager. A thin adaptor over GroupManager that also owns one GroupObject per group.

#include "CountersReader.h"
#include "CountersReplies.h"
#include "GroupManager.h"
#include "GroupObject.h"
#include "rdtmon/dbus/ManagerAdaptor.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace rdtmon {

class ManagerObject final
    : public sdbus::AdaptorInterfaces<org::rdtmon1::Manager_adaptor, sdbus::ObjectManager_adaptor> {
public:
    // requestCollection: start (or join) an asynchronous collection; the callback gets the
    // number removed or an error.
    using CollectionRequest =
        std::function<void(std::function<void(unsigned removed, const std::string* error)>)>;

    ManagerObject(sdbus::IConnection& conn, GroupManager& mgr, CountersReader& reader,
                  CollectionRequest collect);
    ~ManagerObject();

    // Event sinks wired to GroupManager::Events.
    void onCreated(const GroupRecord& rec);
    void onWaiting(const GroupRecord& rec); // the object, State "waiting"; no GroupCreated yet
    void onRemoved(const GroupRecord& rec, RemoveReason reason);
    void onAvailabilityChanged();
    void onCoverageChanged(const std::string& id);
    // Publishes one object per owned group and per waiting container (after start-up
    // reconcile).
    void publishExisting();
    // Destroys the objects of removed groups. A group can be removed from inside one of its
    // own handlers (GetCounters finds it vanished), so destruction waits for the loop.
    void reapObjects() { graveyard_.clear(); }
    // Signals raised before the bus name is owned (start-up reconcile) would reach no
    // subscriber: they are held until the name is ours, then sent.
    void holdSignals() { holding_ = true; }
    void releaseSignals();

private:
    sdbus::ObjectPath CreateGroup(const std::string& container_id, const uint32_t& pid) override;
    sdbus::ObjectPath
    CreateContainerGroup(const std::string& container_id, const sdbus::UnixFd& pidfd,
                         const std::map<std::string, std::string>& labels) override;
    std::tuple<sdbus::ObjectPath, std::string>
    AddContainer(const std::string& container_id, const sdbus::UnixFd& pidfd,
                 const std::map<std::string, std::string>& labels) override;
    std::tuple<sdbus::ObjectPath, std::string>
    AddContainerByPid(const std::string& container_id, const uint32_t& pid,
                      const uint64_t& start_time,
                      const std::map<std::string, std::string>& labels) override;
    void RemoveGroup(const std::string& container_id) override;
    std::vector<sdbus::Struct<std::string, std::string, uint32_t, uint64_t, sdbus::ObjectPath>>
    ListGroups() override;
    std::vector<sdbus::Struct<std::string, std::string, uint32_t, uint64_t,
                              std::map<std::string, std::string>>>
    ListRuntimeGroups() override;
    void GetCounters(sdbus::Result<CountersMap>&& result, std::string container_id) override;
    void GetAllCounters(sdbus::Result<uint64_t, std::vector<CountersEntry>>&& result) override;
    void GetAllValues(sdbus::Result<uint64_t, std::vector<ValuesEntry>>&& result) override;
    std::vector<sdbus::Struct<std::string, std::string, std::string, uint32_t, uint32_t>>
    GetAllCoverage() override;
    std::tuple<std::string, std::vector<sdbus::Struct<uint32_t, uint32_t, uint32_t>>>
    GetCounterAssignment() override;
    void GarbageCollect(sdbus::Result<uint32_t>&& result) override;
    std::string Version() override;
    std::string ResctrlPath() override;
    bool Supported() override;
    std::vector<std::string> MonFeatures() override;
    std::vector<std::string> TelemetryFeatures() override;
    std::map<uint32_t, uint64_t> L3CacheSizes() override;
    uint32_t NumRmids() override;
    uint32_t GroupCount() override;
    uint32_t FreeRmids() override;
    uint32_t CountersContinuous() override;
    uint32_t CountersRotating() override;
    uint64_t CounterCycleUsec() override;

    void requireRoot(const char* method);
    // The caller's uid, as the bus tells it; nullopt once the caller has disconnected (logged
    // unless quiet).
    std::optional<uid_t> callerUid(const char* method, bool quiet);
    // AccessDenied (logged) unless uid is 0.
    void refuseUnlessRoot(const char* method, std::optional<uid_t> uid);
    // Refuses (InvalidArgument) a caller outside rdtmond's pid namespace: a pid number it
    // passes would name another process here, or none.
    void requireOurPidNamespace(const char* method);
    sdbus::ObjectPath replyFor(const GroupRecord& rec);

    sdbus::IConnection& conn_;
    GroupManager& mgr_;
    CountersReader& reader_;
    CollectionRequest collect_;
    std::map<std::string, std::unique_ptr<GroupObject>> objects_;
    std::vector<std::unique_ptr<GroupObject>> graveyard_;
    bool holding_ = false;
    std::vector<std::pair<std::string, std::string>> held_; // (container id, reason)
};

} // namespace rdtmon
