#pragma once

// One scrape: rdtmond's Manager properties and one GetAllCounters over the system bus,
// turned into Prometheus text by the client library's formatter (the one `rdtmonctl
// metrics` uses). When rdtmond does not answer, the text says rdtmon_up 0; the scrape
// itself never fails. Thread-safe: scrapes that arrive together share one reading.

#include "SharedRead.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace rdtmon::client {
class BusClient;
}

namespace rdtmon::exporter {

class Scraper {
public:
    explicit Scraper(std::chrono::milliseconds timeout);
    ~Scraper();
    Scraper(const Scraper&) = delete;
    Scraper& operator=(const Scraper&) = delete;

    std::string scrape();

private:
    std::string read();

    std::chrono::milliseconds timeout_;
    // Every connection has its own thread; one bus connection must not be used by two of
    // them at once, and one reading serves all who asked while it ran.
    SharedRead shared_;
    // Made on the first scrape, on the serving thread, and dropped after any failure so
    // that a restarted bus or rdtmond is found again by the next scrape.
    std::unique_ptr<client::BusClient> client_;
    bool wasUp_ = true; // log each change of rdtmond's reachability once
};

} // namespace rdtmon::exporter
