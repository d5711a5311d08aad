#pragma once

// One D-Bus object per owned group: /org/rdtmon1/group/<id>, interface org.rdtmon1.Group.
// A thin adaptor over GroupManager; ManagerObject creates and retires these.

#include "CountersReader.h"
#include "CountersReplies.h"
#include "GroupManager.h"
#include "rdtmon/dbus/GroupAdaptor.h"

#include <cstdint>
#include <map>
#include <sdbus-c++/sdbus-c++.h>
#include <string>

namespace rdtmon {

// kGroupPathPrefix + "/" + the id escaped with sd_bus_path_encode.
std::string groupObjectPath(const std::string& containerId);
// The State property and AddContainer's state: "waiting" or "active".
const char* stateName(const GroupRecord& rec);

class GroupObject final
    : public sdbus::AdaptorInterfaces<org::rdtmon1::Group_adaptor, sdbus::ManagedObject_adaptor> {
public:
    GroupObject(sdbus::IConnection& conn, GroupManager& mgr, CountersReader& reader,
                GroupRecord rec);
    ~GroupObject();
    // A new record for the same container; a change of state (a waiting container got its
    // group) is announced with PropertiesChanged.
    void update(const GroupRecord& rec);
    // The group's coverage changed: PropertiesChanged for TasksInGroup and TasksOutside.
    void coverageChanged();

private:
    std::string ContainerId() override { return rec_.id; }
    uint32_t Pid() override { return rec_.pid; }
    std::string ResctrlPath() override;
    std::string CtrlMonGroup() override { return rec_.ctrl.empty() ? "/" : rec_.ctrl; }
    std::string ControlGroup() override { return CtrlMonGroup(); } // deprecated name
    uint64_t CreatedUsec() override { return rec_.createdUsec; }
    std::map<std::string, std::string> Labels() override { return rec_.labels; }
    std::string Cgroup() override { return rec_.cgroup; }
    uint32_t TasksInGroup() override;
    uint32_t TasksOutside() override;
    std::string State() override { return stateName(rec_); }
    std::string Origin() override { return originName(rec_.origin); }
    void GetCounters(sdbus::Result<CountersMap>&& result) override;

    GroupManager& mgr_;
    CountersReader& reader_;
    GroupRecord rec_;
};

} // namespace rdtmon
