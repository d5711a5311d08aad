#include "GroupObject.h"

#include "Errors.h"
#include "HandlerErrors.h"
#include "Log.h"
#include "Names.h"
#include "rdtmon/dbus/GroupNames.h"

#include <cstdlib>
#include <systemd/sd-bus.h>
#include <vector>

namespace rdtmon {

std::string groupObjectPath(const std::string& containerId) {
    char* out = nullptr;
    int r = sd_bus_path_encode(kGroupPathPrefix, containerId.c_str(), &out);
    if (r < 0 || out == nullptr) {
        throw Error(ErrorKind::Failed, "cannot encode object path for " + containerId);
    }
    std::string path(out);
    std::free(out);
    return path;
}

const char* stateName(const GroupRecord& rec) {
    return rec.waiting ? "waiting" : "active";
}

GroupObject::GroupObject(sdbus::IConnection& conn, GroupManager& mgr, CountersReader& reader,
                         GroupRecord rec)
    : AdaptorInterfaces(conn, groupObjectPath(rec.id)), mgr_(mgr), reader_(reader),
      rec_(std::move(rec)) {
    registerAdaptor();
    emitInterfacesAddedSignal({org::rdtmon1::Group_adaptor::INTERFACE_NAME});
}

GroupObject::~GroupObject() {
    try {
        emitInterfacesRemovedSignal({org::rdtmon1::Group_adaptor::INTERFACE_NAME});
    } catch (const std::exception& e) {
        log::warning(log::forContainer(rec_.id, std::string("InterfacesRemoved: ") + e.what()));
    }
    unregisterAdaptor();
}

void GroupObject::update(const GroupRecord& rec) {
    const bool granted = rec_.waiting && !rec.waiting;
    const bool ctrlChanged = rec_.ctrl != rec.ctrl;
    rec_ = rec;
    if (!granted && !ctrlChanged) {
        return;
    }
    namespace names = xml::Group;
    std::vector<std::string> changed{names::ResctrlPath.name, names::CtrlMonGroup.name,
                                     names::ControlGroup.name};
    if (granted) {
        changed.emplace_back(names::State.name);
    }
    try {
        getObject().emitPropertiesChangedSignal(org::rdtmon1::Group_adaptor::INTERFACE_NAME,
                                                changed);
    } catch (const std::exception& e) {
        log::warning(log::forContainer(rec_.id, std::string("PropertiesChanged: ") + e.what()));
    }
}

std::string GroupObject::ResctrlPath() {
    if (rec_.waiting) {
        return {}; // no group yet
    }
    return safely<std::string>([&] { return mgr_.groupPath(rec_); }, std::string());
}

uint32_t GroupObject::TasksInGroup() {
    return safely<uint32_t>([&] { return mgr_.coverage(rec_.id).inGroup; }, 0u);
}

uint32_t GroupObject::TasksOutside() {
    return safely<uint32_t>([&] { return mgr_.coverage(rec_.id).outside; }, 0u);
}

void GroupObject::coverageChanged() {
    try {
        getObject().emitPropertiesChangedSignal(
            org::rdtmon1::Group_adaptor::INTERFACE_NAME,
            {xml::Group::TasksInGroup.name, xml::Group::TasksOutside.name});
    } catch (const std::exception& e) {
        log::warning(log::forContainer(rec_.id, std::string("PropertiesChanged: ") + e.what()));
    }
}

void GroupObject::GetCounters(sdbus::Result<CountersMap>&& result) {
    // The object may be retired before the pass answers: the reply holds the id, not this.
    replyCounters(reader_, mgr_, "GetCounters", rec_.id, std::move(result));
}

} // namespace rdtmon
