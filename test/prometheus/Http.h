#pragma once

// HTTP requests for the exporter's tests, through the curl command (no HTTP client is
// hand-rolled here): status, Content-Type and body of one request to a loopback address,
// over HTTPS too, with a CA to trust, a client certificate and basic-auth credentials.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace rdtmon::test {

struct HttpReply {
    int status = 0; // 0 when nothing answered (connection refused, timeout)
    std::string contentType;
    std::string body;
    std::string headers; // the response's header lines as received
    std::string error;   // curl's message when status is 0
};

struct HttpOptions {
    std::string caFile;   // --cacert: the CA an https server's certificate is checked against
    std::string certFile; // --cert and --key: a client certificate
    std::string keyFile;
    std::string user; // -u user:password when set
    std::string password;
    std::vector<std::string> curlArgs; // more, as they are ("--tls-max", "1.2")
};

// method "GET", "HEAD" (--head), "POST", ...; form: URL-encoded POST fields (Prometheus'
// API takes the query so, which spares the test any escaping).
HttpReply httpRequest(const std::string& method, const std::string& url,
                      const std::map<std::string, std::string>& form = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(20),
                      const HttpOptions& options = {});

inline HttpReply httpGet(const std::string& url, const HttpOptions& options = {}) {
    return httpRequest("GET", url, {}, std::chrono::seconds(20), options);
}

} // namespace rdtmon::test
