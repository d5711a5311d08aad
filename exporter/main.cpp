// rdtmon-exporter: rdtmond's counters as Prometheus text on GET /metrics. This file reads
// the command line, starts the listeners and waits for SIGTERM/SIGINT; Scraper reads
// rdtmond, MetricsHttpServer serves HTTP(S), WebConfig and TlsSettings read
// --web.config.file.

#include "BasicAuth.h"
#include "ListenAddress.h"
#include "LogLimiter.h"
#include "MetricsHttpServer.h"
#include "Scraper.h"
#include "TlsSettings.h"
#include "WebConfig.h"
#include "rdtmon/version.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

using namespace rdtmon::exporter;

namespace {

struct Options {
    std::vector<std::string> listen{kDefaultListen};
    double timeoutSeconds = 5;
    std::string webConfigFile;
};

void toStderr(const std::string& line) {
    std::cerr << line << std::endl;
}

// TLS and basic auth as the web configuration file asks; nothing without one.
MetricsHttpServer::Security loadSecurity(const std::string& file) {
    MetricsHttpServer::Security security;
    if (file.empty()) {
        return security;
    }
    // Errors name the file as loadWebConfig does: absolute, as the journal reader needs it.
    const std::string path = std::filesystem::absolute(file).lexically_normal().string();
    const WebConfig config = loadWebConfig(path);
    if (config.tls) {
        try {
            security.tls = loadTlsSettings(*config.tls);
        } catch (const WebConfigError& e) {
            throw WebConfigError("web config file " + path + ": " + e.what());
        }
    }
    if (!config.basicAuthUsers.empty()) {
        security.auth = std::make_shared<BasicAuth>(config.basicAuthUsers);
        security.refusedLog = std::make_shared<LogLimiter>(&toStderr);
    }
    security.serverLog = std::make_shared<LogLimiter>(&toStderr);
    return security;
}

} // namespace

int main(int argc, char** argv) {
    Options opts;
    CLI::App app{"rdtmon-exporter: rdtmond's per-container resctrl counters for Prometheus, "
                 "served as text at GET /metrics. Reads only through rdtmond's D-Bus API on "
                 "the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured)."};
    app.set_version_flag("--version", std::string("rdtmon-exporter ") + RDTMON_VERSION);
    app.add_option("--listen,-l", opts.listen,
                   "address to serve on, IPV4:PORT or [IPV6]:PORT; repeat for several "
                   "(port 0: any free port, logged at start)")
        ->default_str(kDefaultListen)
        ->type_name("ADDR:PORT");
    app.add_option("--timeout,-t", opts.timeoutSeconds,
                   "seconds to wait for rdtmond per scrape before reporting rdtmon_up 0")
        ->default_val(5)
        ->check(CLI::Range(0.1, 60.0));
    app.add_option("--web.config.file", opts.webConfigFile,
                   "Prometheus exporter-toolkit web configuration (YAML): TLS with "
                   "tls_server_config, basic auth with basic_auth_users (bcrypt); read once at "
                   "start")
        ->type_name("FILE");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; a bad command line exits 2, as the man page says.
        return app.exit(e) == 0 ? 0 : 2;
    }

    // SIGTERM and SIGINT are taken by sigwait() below only: blocked before any thread
    // (libmicrohttpd's, sd-bus's) starts, so that every thread inherits the mask.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGTERM);
    sigaddset(&stopSignals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
    // A scraper that hangs up mid-reply must not kill the process.
    std::signal(SIGPIPE, SIG_IGN);

    try {
        std::vector<ListenAddress> addresses;
        for (const std::string& text : opts.listen) {
            addresses.push_back(parseListenAddress(text));
        }
        const MetricsHttpServer::Security security = loadSecurity(opts.webConfigFile);
        Scraper scraper(
            std::chrono::milliseconds(static_cast<int64_t>(opts.timeoutSeconds * 1000)));
        std::vector<std::unique_ptr<MetricsHttpServer>> servers;
        for (const ListenAddress& a : addresses) {
            servers.push_back(std::make_unique<MetricsHttpServer>(
                a, [&scraper] { return scraper.scrape(); }, security));
            std::cerr << "<6>rdtmon-exporter " << RDTMON_VERSION << ": serving "
                      << (security.tls ? "https://" : "http://") << servers.back()->boundAddress()
                      << "/metrics" << (security.auth ? " (basic auth)" : "") << std::endl;
        }
        int sig = 0;
        sigwait(&stopSignals, &sig);
        std::cerr << "<6>rdtmon-exporter: " << strsignal(sig) << ", stopping" << std::endl;
        servers.clear(); // finishes the scrape in progress before the scraper goes
        // What a burst of refused requests held back at the end.
        for (const auto& log : {security.refusedLog, security.serverLog}) {
            if (log) {
                log->flush();
            }
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "<3>rdtmon-exporter: " << e.what() << std::endl;
        return 1;
    }
}
