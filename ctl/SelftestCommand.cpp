#include "Commands.h"
#include "ExitCodes.h"
#include "Selftest.h"

#include <iostream>
#include <unistd.h>

namespace rdtmon::ctl {

int runSelftest(bool json, bool verbose, std::ostream& out) {
    if (::geteuid() != 0) {
        std::cerr << "rdtmonctl: selftest must run as root: it asks rdtmond for groups and "
                     "moves its own threads between resctrl groups\n";
        return kExitAccessDenied;
    }
    // Blocked from here: a signal ends the run at its next step, after its clean-up.
    selftest::Interrupt interrupt;
    client::BusClient bus;
    selftest::Callbacks cb;
    if (!json) {
        cb.node = [&](const selftest::NodeFacts& n) {
            out << selftest::formatNode(n) << std::flush;
        };
        cb.check = [&](const selftest::Check& c) {
            out << selftest::formatCheck(c, verbose) << std::flush;
        };
    }
    selftest::Report report;
    try {
        report = selftest::runSelftest(bus, interrupt, cb);
    } catch (const selftest::Refused& e) {
        std::cerr << "rdtmonctl: selftest will not run: " << e.what() << "\n";
        return kExitError;
    }
    if (json) {
        out << selftest::reportJson(report).dump(2) << "\n";
    } else {
        out << selftest::formatSummary(report);
    }
    out.flush();
    if (const int sig = interrupt.pending(); sig != 0) {
        return 128 + sig;
    }
    return report.passed() ? kExitOk : kExitChecksFailed;
}

} // namespace rdtmon::ctl
