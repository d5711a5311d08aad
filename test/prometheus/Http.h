#pragma once

// HTTP requests for the exporter's tests, through the curl command (no HTTP client is
// hand-rolled here): status, Content-Type and body of one request to a loopback address.

#include <chrono>
#include <map>
#include <string>

namespace rdtmon::test {

struct HttpReply {
    int status = 0; // 0 when nothing answered (connection refused, timeout)
    std::string contentType;
    std::string body;
    std::string headers; // the response's header lines as received
    std::string error;   // curl's message when status is 0
};

// method "GET", "HEAD" (--head), "POST", ...; form: URL-encoded POST fields (Prometheus'
// API takes the query so, which spares the test any escaping).
HttpReply httpRequest(const std::string& method, const std::string& url,
                      const std::map<std::string, std::string>& form = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(20));

inline HttpReply httpGet(const std::string& url) {
    return httpRequest("GET", url);
}

} // namespace rdtmon::test
