#include "ManagerRestart.h"

namespace rdtmon::test {

void reopenManager(std::unique_ptr<GroupManager>& mgr, std::unique_ptr<GroupRegistry>& registry,
                   const std::string& stateFile, GroupManager::Opener opener,
                   GroupManager::Events events, GroupManager::Clock clock) {
    mgr.reset();
    registry = std::make_unique<GroupRegistry>(stateFile);
    registry->load();
    mgr = std::make_unique<GroupManager>(std::move(opener), *registry, std::move(events),
                                         std::move(clock));
    mgr->start();
}

GroupManager::Opener emulatorOpener(const EmulatorMount& emu) {
    return [&emu](std::string& why) -> std::unique_ptr<Resctrl> {
        if (!emu.running()) {
            why = "emulator stopped";
            return nullptr;
        }
        return std::make_unique<Resctrl>(emu.path());
    };
}

} // namespace rdtmon::test
