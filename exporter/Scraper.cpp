#include "Scraper.h"

#include "BusClient.h"
#include "ClientError.h"
#include "MetricsText.h"

#include <exception>
#include <iostream>

namespace rdtmon::exporter {

Scraper::Scraper(std::chrono::milliseconds timeout) : timeout_(timeout) {}

Scraper::~Scraper() = default;

std::string Scraper::scrape() {
    client::MetricsInput in;
    try {
        if (!client_) {
            client_ = std::make_unique<client::BusClient>(timeout_);
        }
        in.status = client_->status();
        if (in.status.supported) {
            try {
                in.snapshot = client_->allCounters();
            } catch (const client::ClientError& e) {
                // resctrl went away between the two calls: rdtmond is up, nothing to read.
                if (e.kind() != client::ClientErrorKind::Unsupported) {
                    throw;
                }
            }
        }
        in.up = true;
    } catch (const std::exception& e) {
        client_.reset();
        in = client::MetricsInput{};
        if (wasUp_) {
            std::cerr << "rdtmon-exporter: rdtmond does not answer, reporting rdtmon_up 0: "
                      << e.what() << std::endl;
        }
    }
    if (in.up && !wasUp_) {
        std::cerr << "rdtmon-exporter: rdtmond answers again" << std::endl;
    }
    wasUp_ = in.up;
    return client::formatMetrics(in);
}

} // namespace rdtmon::exporter
