#include "MetricsHttpServer.h"

#include "MetricsText.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <netinet/in.h>
#include <stdexcept>
#include <string_view>
#include <sys/socket.h>
#include <vector>

namespace rdtmon::exporter {

namespace {

constexpr const char* kTextType = "text/plain; charset=utf-8";

MHD_Result queueReply(MHD_Connection* connection, const MetricsHttpServer::Reply& reply,
                      bool unauthorized = false) {
    MHD_Response* response = MHD_create_response_from_buffer(
        reply.body.size(), const_cast<char*>(reply.body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.contentType);
    if (reply.status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    // libmicrohttpd adds WWW-Authenticate: Basic realm="..." and the status 401.
    const MHD_Result r =
        unauthorized
            ? MHD_queue_basic_auth_fail_response(connection, MetricsHttpServer::kRealm, response)
            : MHD_queue_response(connection, reply.status, response);
    MHD_destroy_response(response);
    return r;
}

// libmicrohttpd calls this up to three times per request (headers, body chunks, end). A
// scrape has no body; anything with one is answered on the first call as well, which makes
// libmicrohttpd close the connection after the reply instead of reading the upload.
MHD_Result onRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                     const char* /*version*/, const char* /*uploadData*/,
                     size_t* /*uploadDataSize*/, void** /*connCls*/) {
    const auto* server = static_cast<const MetricsHttpServer*>(cls);
    if (!server->admit(connection)) {
        return MHD_YES; // the 401 is queued
    }
    return queueReply(connection, server->answer(method, url));
}

// "127.0.0.1" or "::1": the client in a log line (its port says nothing).
std::string hostOf(const sockaddr* addr) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (addr != nullptr && addr->sa_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, buf,
                    sizeof buf);
    } else if (addr != nullptr && addr->sa_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, buf,
                    sizeof buf);
    }
    return buf;
}

// A user name the client chose, safe for one journal line: printable ASCII, the rest and
// quotes escaped, at most 64 bytes of it.
std::string quotedForLog(std::string_view name) {
    constexpr std::size_t kMax = 64;
    std::string out = "\"";
    for (std::size_t i = 0; i < name.size() && i < kMax; ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    out += name.size() > kMax ? "\"..." : "\"";
    return out;
}

struct MhdFree {
    void operator()(char* p) const {
        explicit_bzero(p, std::strlen(p)); // the password does not linger in freed memory
        MHD_free(p);
    }
};
using MhdString = std::unique_ptr<char, MhdFree>;

// Client certificates are verified during the handshake, so that a client without a good
// one never gets to send a request: against the client CA, for TLS client use (a
// certificate without extended key usage counts as fit for any, as in Go's crypto/tls).
int verifyPeer(gnutls_session_t session, bool required) {
    unsigned count = 0;
    if (gnutls_certificate_get_peers(session, &count) == nullptr || count == 0) {
        return required ? -1 : 0;
    }
    gnutls_typed_vdata_st purpose{};
    purpose.type = GNUTLS_DT_KEY_PURPOSE_OID;
    purpose.data = reinterpret_cast<unsigned char*>(const_cast<char*>(GNUTLS_KP_TLS_WWW_CLIENT));
    unsigned status = 0;
    if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0) {
        return -1;
    }
    return 0;
}
int verifyRequired(gnutls_session_t session) {
    return verifyPeer(session, true);
}
int verifyIfGiven(gnutls_session_t session) {
    return verifyPeer(session, false);
}

// Before the connection's thread starts its handshake: how this session treats client
// certificates (libmicrohttpd itself only asks for one, and does not verify it).
void onConnection(void* cls, MHD_Connection* connection, void** /*socketContext*/,
                  MHD_ConnectionNotificationCode code) {
    const auto* server = static_cast<const MetricsHttpServer*>(cls);
    if (code != MHD_CONNECTION_NOTIFY_STARTED || !server->tls() ||
        server->security().tls->clientAuth == ClientAuth::None) {
        return;
    }
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (info == nullptr || info->tls_session == nullptr) {
        return;
    }
    auto session = static_cast<gnutls_session_t>(info->tls_session);
    if (server->security().tls->clientAuth == ClientAuth::RequireAndVerify) {
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_function(session, &verifyRequired);
    } else {
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUEST);
        gnutls_session_set_verify_function(session, &verifyIfGiven);
    }
}

// libmicrohttpd's messages ("Error: received handshake message out of context." for every
// failed handshake): one journal line per interval, not one per port scan.
void onServerMessage(void* cls, const char* format, va_list ap) {
    auto* log = static_cast<LogLimiter*>(cls);
    char buf[512];
    std::vsnprintf(buf, sizeof buf, format, ap);
    std::string text = buf;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    // Its words for any failed handshake are "received handshake message out of context".
    std::string line = "<4>rdtmon-exporter: ";
    if (text.find("handshake") != std::string::npos) {
        line += "a TLS handshake failed (a client that does not speak TLS, no TLS version in "
                "common, or a client certificate missing or not trusted); ";
    }
    line += "libmicrohttpd: ";
    line += text;
    log->log(line);
}

} // namespace

void MetricsHttpServer::DaemonStop::operator()(MHD_Daemon* d) const {
    MHD_stop_daemon(d);
}

MetricsHttpServer::MetricsHttpServer(const ListenAddress& listen, Producer producer,
                                     Security security)
    : producer_(std::move(producer)), security_(std::move(security)) {
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (listen.family() == AF_INET6) {
        flags |= MHD_USE_IPv6; // IPv6 only: [::]:PORT does not take IPv4 as well
    }
    auto ptr = [](const void* p) { return const_cast<void*>(p); };
    std::vector<MHD_OptionItem> options;
    if (security_.serverLog) {
        // First, so that messages at start go there too.
        options.push_back({MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&onServerMessage),
                           security_.serverLog.get()});
    }
    options.push_back({MHD_OPTION_SOCK_ADDR, 0, ptr(&listen.addr)});
    // Bounded: a scraper or two, never hundreds; one address cannot take every slot, and
    // idle clients are dropped.
    options.push_back({MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, nullptr});
    options.push_back({MHD_OPTION_PER_IP_CONNECTION_LIMIT, kMaxPerAddress, nullptr});
    options.push_back({MHD_OPTION_CONNECTION_TIMEOUT, kIdleSeconds, nullptr});
    if (security_.tls) {
        const TlsSettings& tls = *security_.tls;
        flags |= MHD_USE_TLS;
        options.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, ptr(tls.certPem.c_str())});
        options.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, ptr(tls.keyPem.c_str())});
        options.push_back({MHD_OPTION_HTTPS_PRIORITIES, 0, ptr(tls.priorities.c_str())});
        if (tls.clientAuth != ClientAuth::None) {
            options.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, ptr(tls.clientCaPem.c_str())});
            options.push_back(
                {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&onConnection), this});
        }
    }
    options.push_back({MHD_OPTION_END, 0, nullptr});
    errno = 0;
    daemon_.reset(MHD_start_daemon(flags, static_cast<uint16_t>(listen.port()), nullptr, nullptr,
                                   &onRequest, this, MHD_OPTION_ARRAY, options.data(),
                                   MHD_OPTION_END));
    if (!daemon_) {
        const int err = errno;
        std::string message = "cannot listen on ";
        message += formatListenAddress(reinterpret_cast<const sockaddr*>(&listen.addr));
        if (security_.tls) {
            message += " with TLS";
        }
        if (err != 0) {
            message += ": ";
            message += std::strerror(err);
        }
        throw std::runtime_error(message);
    }
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_.get(), MHD_DAEMON_INFO_LISTEN_FD);
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (info == nullptr ||
        ::getsockname(info->listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
        throw std::runtime_error("cannot read the bound address of the listening socket");
    }
    bound_ = formatListenAddress(reinterpret_cast<const sockaddr*>(&bound));
}

MetricsHttpServer::~MetricsHttpServer() = default;

bool MetricsHttpServer::admit(MHD_Connection* connection) const {
    if (!security_.auth) {
        return true;
    }
    char* rawPassword = nullptr;
    MhdString user(MHD_basic_auth_get_username_password(connection, &rawPassword));
    MhdString password(rawPassword);
    std::string why;
    if (!user) {
        why = "no basic-auth credentials";
    } else {
        switch (security_.auth->check(user.get(), password ? password.get() : "")) {
        case BasicAuth::Result::Ok:
            return true;
        case BasicAuth::Result::UnknownUser:
            why = "unknown user " + quotedForLog(user.get());
            break;
        case BasicAuth::Result::WrongPassword:
            why = "wrong password for user " + quotedForLog(user.get());
            break;
        }
    }
    if (security_.refusedLog) {
        const MHD_ConnectionInfo* info =
            MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        std::string line = "<4>rdtmon-exporter: 401 for ";
        line += hostOf(info != nullptr ? info->client_addr : nullptr);
        line += ": ";
        line += why;
        security_.refusedLog->log(line);
    }
    // The same reply whatever was wrong.
    queueReply(connection, {MHD_HTTP_UNAUTHORIZED, "401 unauthorized\n", kTextType}, true);
    return false;
}

MetricsHttpServer::Reply MetricsHttpServer::answer(const std::string& method,
                                                   const std::string& url) const {
    if (url != "/metrics") {
        return {MHD_HTTP_NOT_FOUND, "404 not found: metrics are at /metrics\n", kTextType};
    }
    if (method != MHD_HTTP_METHOD_GET && method != MHD_HTTP_METHOD_HEAD) {
        return {MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed: use GET\n", kTextType};
    }
    try {
        return {MHD_HTTP_OK, producer_(), client::kMetricsContentType};
    } catch (const std::exception& e) {
        // The producer reports an unreachable rdtmond as rdtmon_up 0 itself; reaching here
        // is a bug, and Prometheus shows a failed scrape (up 0) for it.
        return {MHD_HTTP_INTERNAL_SERVER_ERROR, std::string("500 ") + e.what() + "\n", kTextType};
    }
}

} // namespace rdtmon::exporter
