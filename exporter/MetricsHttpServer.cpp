#include "MetricsHttpServer.h"

#include "MetricsText.h"

#include <microhttpd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <sys/socket.h>

namespace rdtmon::exporter {

namespace {

constexpr const char* kTextType = "text/plain; charset=utf-8";

// libmicrohttpd calls this up to three times per request (headers, body chunks, end). A
// scrape has no body; anything with one is answered on the first call as well, which makes
// libmicrohttpd close the connection after the reply instead of reading the upload.
MHD_Result onRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                     const char* /*version*/, const char* /*uploadData*/,
                     size_t* /*uploadDataSize*/, void** /*connCls*/) {
    const auto* server = static_cast<const MetricsHttpServer*>(cls);
    MetricsHttpServer::Reply reply = server->answer(method, url);
    MHD_Response* response = MHD_create_response_from_buffer(reply.body.size(), reply.body.data(),
                                                             MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.contentType);
    if (reply.status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    const MHD_Result r = MHD_queue_response(connection, reply.status, response);
    MHD_destroy_response(response);
    return r;
}

} // namespace

void MetricsHttpServer::DaemonStop::operator()(MHD_Daemon* d) const {
    MHD_stop_daemon(d);
}

MetricsHttpServer::MetricsHttpServer(const ListenAddress& listen, Producer producer)
    : producer_(std::move(producer)) {
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (listen.family() == AF_INET6) {
        flags |= MHD_USE_IPv6; // IPv6 only: [::]:PORT does not take IPv4 as well
    }
    errno = 0;
    daemon_.reset(MHD_start_daemon(
        flags, static_cast<uint16_t>(listen.port()), nullptr, nullptr, &onRequest, this,
        MHD_OPTION_SOCK_ADDR, reinterpret_cast<const sockaddr*>(&listen.addr),
        // Bounded: a scraper or two, never hundreds; one address cannot take every slot, and
        // idle clients are dropped.
        MHD_OPTION_CONNECTION_LIMIT, kMaxConnections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        kMaxPerAddress, MHD_OPTION_CONNECTION_TIMEOUT, kIdleSeconds, MHD_OPTION_END));
    if (!daemon_) {
        const int err = errno;
        throw std::runtime_error(
            "cannot listen on " +
            formatListenAddress(reinterpret_cast<const sockaddr*>(&listen.addr)) +
            (err != 0 ? std::string(": ") + std::strerror(err) : std::string()));
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
