#pragma once

// The state of one self-test run, shared by its checks (Selftest.cpp: the behaviours,
// LoadCheck.cpp: the numbers).

#include "BusClient.h"
#include "Interrupt.h"
#include "LoadPlan.h"
#include "SelftestReport.h"
#include "TestProcess.h"

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace rdtmon::ctl::selftest {

class Run {
public:
    Run(client::BusClient& bus, Interrupt& interrupt, NodeFacts node)
        : bus(bus), interrupt(interrupt), node(std::move(node)) {}

    client::BusClient& bus;
    Interrupt& interrupt;
    NodeFacts node;
    LoadPlan plan;
    std::vector<int> loadCpus; // the CPUs of loadDomain that rdtmonctl may run on
    unsigned loadDomain = 0;
    uint64_t l3Bytes = 0; // of loadDomain; 0 when unknown

    // rdtmon-selftest-<rdtmonctl's pid>-<what>
    std::string idFor(const std::string& what) const;
    // AddContainer for p, remembered for removal; the group's directory.
    std::string add(const std::string& id, const TestProcess& p, std::string& state);
    // RemoveGroup, forgotten once done (also when rdtmond had no such group).
    void remove(const std::string& id);
    // Removes every group still made; what could not be removed.
    std::vector<std::string> removeAll() noexcept;

private:
    std::set<std::string> made_;
};

// Tasks listed in a resctrl tasks file (empty when it cannot be read).
std::set<pid_t> readTasks(const std::string& path);
bool dirExists(const std::string& path);
double secondsSince(std::chrono::steady_clock::time_point t);

// Chooses the load's L3 domain and CPUs and plans its buffer; throws Refused when the node
// cannot give it the memory. Before anything is made.
void prepareLoad(Run& run);
std::vector<Check> loadChecks(Run& run);

} // namespace rdtmon::ctl::selftest
