#pragma once

// rdtmonctl's subcommands over a BusClient, each writing to out and throwing
// client::ClientError on failure (main turns that into the exit code).

#include "BusClient.h"
#include "TopView.h"

#include <ostream>
#include <string>

namespace rdtmon::ctl {

void runStatus(client::BusClient& bus, bool json, std::ostream& out);
void runList(client::BusClient& bus, bool json, bool fullIds, std::ostream& out);
void runCounters(client::BusClient& bus, const std::string& id, bool json, std::ostream& out);
void runGc(client::BusClient& bus, std::ostream& out);
// rdtmonctl selftest: the exit code (0 when every applicable check passed, 128+N when
// signal N cut it short after its clean-up).
int runSelftest(bool json, bool verbose, std::ostream& out);

struct TopSettings {
    TopOptions view;
    double delaySeconds = 2;
    long iterations = 0; // 0: until interrupted
    bool json = false;
};
// Returns when the iterations are done or on SIGINT/SIGTERM (which it blocks while it
// runs, so a signal in the middle of a read ends the loop at the next wait).
void runTop(client::BusClient& bus, const TopSettings& settings, std::ostream& out, bool terminal);

} // namespace rdtmon::ctl
