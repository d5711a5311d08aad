#include "Scraper.h"

#include "BusClient.h"
#include "MetricsCollect.h"
#include "MetricsText.h"

#include <exception>
#include <iostream>

namespace rdtmon::exporter {

Scraper::Scraper(std::chrono::milliseconds timeout) : timeout_(timeout) {}

Scraper::~Scraper() = default;

std::string Scraper::scrape() {
    return shared_.get([this] { return read(); });
}

std::string Scraper::read() {
    client::MetricsInput in;
    std::string why;
    try {
        if (!client_) {
            client_ = std::make_unique<client::BusClient>(timeout_);
        }
        // The same reading as `rdtmonctl metrics`: the properties and one GetAllCounters.
        in = client::collectMetrics(*client_, &why);
    } catch (const std::exception& e) {
        // Whatever went wrong (no bus, a denied or failed call), the scrape still answers.
        in = client::MetricsInput{};
        why = e.what();
    }
    if (!in.up) {
        client_.reset(); // a restarted bus or rdtmond is found again by the next scrape
        if (wasUp_) {
            std::cerr << "<4>rdtmon-exporter: rdtmond does not answer, reporting rdtmon_up 0: "
                      << why << std::endl;
        }
    } else if (!wasUp_) {
        std::cerr << "<6>rdtmon-exporter: rdtmond answers again" << std::endl;
    }
    wasUp_ = in.up;
    return client::formatMetrics(in);
}

} // namespace rdtmon::exporter
