#pragma once

// rdtmonctl selftest (docs/selftest.md): every kernel behaviour rdtmon relies on, checked on
// this node through rdtmond's own methods, and the counters checked against a known memory
// load. It makes groups only for processes of its own, under ids that start with
// rdtmon-selftest- (which rdtmond's collector leaves alone and its start-up removes), and
// removes them before it returns, also when interrupted.

#include "BusClient.h"
#include "Interrupt.h"
#include "SelftestReport.h"

#include <functional>
#include <stdexcept>

namespace rdtmon::ctl::selftest {

// The self-test will not start (not enough free memory for its load, no monitoring): what
// and why; nothing was made.
class Refused : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Callbacks {
    std::function<void(const NodeFacts&)> node; // once, before the first check
    std::function<void(const Check&)> check;    // after each check
};

// Runs the whole self-test; returns its report (stopped set when a signal or rdtmond's end
// cut it short). Throws Refused, or client::ClientError when rdtmond cannot be asked at all.
Report runSelftest(client::BusClient& bus, Interrupt& interrupt, const Callbacks& callbacks);

} // namespace rdtmon::ctl::selftest
