#pragma once

// The HTTP side of rdtmon-exporter, bus-free: libmicrohttpd on one address, answering
// GET/HEAD /metrics with what the producer returns (Prometheus text format 0.0.4), 404 for
// any other path and 405 for any other method. Bounded as a server on a node address must
// be: every connection has its own thread, so a slow scrape or a client that trickles its
// headers never holds up accepting or another scrape; at most kMaxConnections at once,
// kMaxPerAddress from one address, and a connection idle for kIdleSeconds is dropped. The
// producer is called from several threads at once and must be thread-safe.
//
// With Security (--web.config.file) it serves HTTPS through libmicrohttpd's own TLS
// (GnuTLS), verifies client certificates when asked to, and answers every request without
// the right basic-auth credentials with 401; refused requests and failed handshakes are
// logged, each kind at most once per LogLimiter interval.

#include "BasicAuth.h"
#include "ListenAddress.h"
#include "LogLimiter.h"
#include "TlsSettings.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>

struct MHD_Daemon;
struct MHD_Connection;

namespace rdtmon::exporter {

class MetricsHttpServer {
public:
    using Producer = std::function<std::string()>;
    static constexpr unsigned kMaxConnections = 64;
    static constexpr unsigned kMaxPerAddress = 4;
    static constexpr unsigned kIdleSeconds = 10;

    static constexpr const char* kRealm = "rdtmon-exporter";

    // What --web.config.file turns on; every listener of the process shares the same.
    struct Security {
        std::optional<TlsSettings> tls;  // HTTPS with these; none: plain HTTP
        std::shared_ptr<BasicAuth> auth; // null: no authentication
        // Refused requests ("<4>rdtmon-exporter: ..."); null: not logged.
        std::shared_ptr<LogLimiter> refusedLog;
        // libmicrohttpd's own messages (failed TLS handshakes among them); null: its
        // default, stderr as they come.
        std::shared_ptr<LogLimiter> serverLog;
    };

    // Listens and serves at once; throws std::runtime_error when it cannot listen.
    MetricsHttpServer(const ListenAddress& listen, Producer producer, Security security = {});
    ~MetricsHttpServer(); // stops listening, finishes the request in progress
    MetricsHttpServer(const MetricsHttpServer&) = delete;
    MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

    // The address really bound ("127.0.0.1:41234" when port 0 was asked for).
    const std::string& boundAddress() const { return bound_; }

    // Called by libmicrohttpd's thread: the status and body of one request.
    struct Reply {
        unsigned status;
        std::string body;
        const char* contentType;
    };
    Reply answer(const std::string& method, const std::string& url) const;
    // Called by libmicrohttpd's thread before answer(): whether the request may be
    // answered. Without auth always; else queues the 401 itself, logs it, and says no.
    bool admit(MHD_Connection* connection) const;

    const Security& security() const { return security_; }
    bool tls() const { return security_.tls.has_value(); }

private:
    struct DaemonStop {
        void operator()(MHD_Daemon* d) const;
    };
    Producer producer_;
    Security security_;
    std::unique_ptr<MHD_Daemon, DaemonStop> daemon_;
    std::string bound_;
};

} // namespace rdtmon::exporter
