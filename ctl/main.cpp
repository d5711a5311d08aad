// rdtmonctl: rdtmond's groups, counters and rates for people and scripts (rdtmonctl(1)).
// The command line is CLI11's; the work is in Commands and TopView.

#include "Commands.h"
#include "ExitCodes.h"
#include "MetricsCollect.h"
#include "rdtmon/version.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <map>
#include <unistd.h>

using namespace rdtmon;
using namespace rdtmon::ctl;
using client::ClientError;
using client::ClientErrorKind;

namespace {

int exitCodeOf(ClientErrorKind kind) {
    switch (kind) {
    case ClientErrorKind::NotRunning:
        return kExitNotRunning;
    case ClientErrorKind::Unsupported:
        return kExitUnsupported;
    case ClientErrorKind::AccessDenied:
        return kExitAccessDenied;
    case ClientErrorKind::NoSuchGroup:
        return kExitNoSuchGroup;
    case ClientErrorKind::Other:
        break;
    }
    return kExitError;
}

// rdtmonctl metrics always prints the text, rdtmon_up 0 included, so that a textfile
// collector job can write it unconditionally; why rdtmond did not answer goes to stderr.
int runMetrics() {
    std::string why;
    const client::MetricsInput in = client::collectMetrics(&why);
    std::cout << client::formatMetrics(in) << std::flush;
    if (!in.up) {
        std::cerr << "rdtmonctl: " << why << "\n";
    }
    return kExitOk;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Show rdtmond's per-container cache and memory-bandwidth monitoring.",
                 "rdtmonctl"};
    app.set_version_flag("--version", RDTMON_VERSION);
    app.require_subcommand(1, 1);
    app.fallthrough();

    bool json = false;
    bool fullIds = false;
    std::string id;
    TopSettings top;
    std::string sortName = "total";

    CLI::App* status = app.add_subcommand("status", "rdtmond's version and resctrl's state");
    status->add_flag("--json", json, "one JSON object");
    CLI::App* list = app.add_subcommand(
        "list", "the groups rdtmond owns, and those runtimes made, with their labels");
    list->add_flag("--json", json, "one JSON array");
    list->add_flag("--no-trunc", fullIds, "whole container ids");
    CLI::App* counters = app.add_subcommand("counters", "one container's counters per domain");
    counters->add_option("ID", id, "container id")->required();
    counters->add_flag("--json", json, "one JSON object");
    CLI::App* topCmd =
        app.add_subcommand("top", "LLC occupancy and memory bandwidth per container, refreshed");
    topCmd->add_flag("--json", top.json, "one JSON object per line and interval");
    topCmd->add_option("-d,--delay", top.delaySeconds, "seconds between reads (default 2)")
        ->check(CLI::Range(0.1, 86400.0));
    topCmd
        ->add_option("-n,--iterations", top.iterations,
                     "intervals to show (default: until "
                     "interrupted)")
        ->check(CLI::PositiveNumber);
    topCmd
        ->add_option("-s,--sort", sortName,
                     "column to sort by: llc, total, local, power (Intel telemetry), name")
        ->check(CLI::IsMember({"llc", "total", "local", "power", "name"}));
    topCmd->add_flag("--per-domain", top.view.perDomain, "a row per L3 domain");
    std::string byName = "container";
    topCmd
        ->add_option("--by", byName,
                     "container (default), pod (its containers summed), or domain (each L3 "
                     "domain's load and each pod's share of it)")
        ->check(CLI::IsMember({"container", "pod", "domain"}));
    CLI::App* gc = app.add_subcommand("gc", "collect the groups of vanished containers (root)");
    CLI::App* metrics =
        app.add_subcommand("metrics", "the Prometheus text, as rdtmon-exporter serves it");
    bool verbose = false;
    CLI::App* selftestCmd = app.add_subcommand(
        "selftest", "check resctrl and rdtmon on this node with groups of its own (root)");
    selftestCmd->add_flag("--json", json, "one JSON object, for a bug report");
    selftestCmd->add_flag("-v,--verbose", verbose, "the evidence of every check");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version print and end with 0; every real parse error with 2.
        return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }

    try {
        if (metrics->parsed()) {
            return runMetrics();
        }
        if (selftestCmd->parsed()) {
            return runSelftest(json, verbose, std::cout);
        }
        if (gc->parsed()) {
            // A collection may run a command source: give it longer than a read.
            client::BusClient bus(std::chrono::seconds(60));
            runGc(bus, std::cout);
            return kExitOk;
        }
        client::BusClient bus;
        if (status->parsed()) {
            runStatus(bus, json, std::cout);
        } else if (list->parsed()) {
            runList(bus, json, fullIds, std::cout);
        } else if (counters->parsed()) {
            runCounters(bus, id, json, std::cout);
        } else if (topCmd->parsed()) {
            static const std::map<std::string, SortColumn> kSort = {{"llc", SortColumn::Llc},
                                                                    {"total", SortColumn::Total},
                                                                    {"local", SortColumn::Local},
                                                                    {"power", SortColumn::Power},
                                                                    {"name", SortColumn::Name}};
            top.view.sort = kSort.at(sortName);
            static const std::map<std::string, TopBy> kBy = {
                {"container", TopBy::Container}, {"pod", TopBy::Pod}, {"domain", TopBy::Domain}};
            top.view.by = kBy.at(byName);
            runTop(bus, top, std::cout, ::isatty(STDOUT_FILENO) == 1);
        }
        std::cout.flush();
        return std::cout.good() ? kExitOk : kExitError;
    } catch (const ClientError& e) {
        std::cout.flush();
        std::cerr << "rdtmonctl: " << e.what() << "\n";
        return exitCodeOf(e.kind());
    } catch (const std::exception& e) {
        std::cerr << "rdtmonctl: " << e.what() << "\n";
        return kExitError;
    }
}
