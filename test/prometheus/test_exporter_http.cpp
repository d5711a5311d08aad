// rdtmon-exporter's HTTP side without a bus: the listen-address parser, and
// MetricsHttpServer with a fake producer answered over real loopback sockets (curl).

#include "Http.h"
#include "ListenAddress.h"
#include "MetricsHttpServer.h"
#include "MetricsText.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>

using namespace rdtmon::exporter;
using rdtmon::test::httpGet;
using rdtmon::test::httpRequest;
using ::testing::HasSubstr;

namespace {

TEST(ListenAddress, ParsesIpv4AndBracketedIpv6) {
    ListenAddress a = parseListenAddress("127.0.0.1:10036");
    EXPECT_EQ(a.family(), AF_INET);
    EXPECT_EQ(a.port(), 10036u);
    EXPECT_EQ(formatListenAddress(reinterpret_cast<const sockaddr*>(&a.addr)), "127.0.0.1:10036");

    ListenAddress b = parseListenAddress("[::1]:0");
    EXPECT_EQ(b.family(), AF_INET6);
    EXPECT_EQ(b.port(), 0u);
    EXPECT_EQ(formatListenAddress(reinterpret_cast<const sockaddr*>(&b.addr)), "[::1]:0");
}

TEST(ListenAddress, DefaultIsLoopback) {
    ListenAddress a = parseListenAddress(kDefaultListen);
    EXPECT_EQ(formatListenAddress(reinterpret_cast<const sockaddr*>(&a.addr)),
              "127.0.0.1:" + std::to_string(kDefaultPort));
}

TEST(ListenAddress, RejectsWhatItCannotBindWithoutGuessing) {
    for (const char* bad : {"", "10036", "localhost:10036", "127.0.0.1", "127.0.0.1:", "::1:10036",
                            "[::1]10036", "[::1]:", "[localhost]:1", "127.0.0.1:65536",
                            "127.0.0.1:-1", "127.0.0.1:80x", "1.2.3:80"}) {
        EXPECT_THROW(parseListenAddress(bad), std::invalid_argument) << bad;
    }
}

class HttpServer : public ::testing::Test {
protected:
    std::atomic<int> calls{0};
    MetricsHttpServer server{parseListenAddress("127.0.0.1:0"), [this] {
                                 ++calls;
                                 return std::string("rdtmon_up 1\n");
                             }};
    std::string url(const std::string& path) { return "http://" + server.boundAddress() + path; }
};

TEST_F(HttpServer, PortZeroBindsAFreeLoopbackPort) {
    EXPECT_THAT(server.boundAddress(), ::testing::StartsWith("127.0.0.1:"));
    EXPECT_NE(server.boundAddress(), "127.0.0.1:0");
}

TEST_F(HttpServer, GetMetricsServesTheProducersTextAsPrometheusText) {
    rdtmon::test::HttpReply r = httpGet(url("/metrics"));
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.contentType, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r.contentType, rdtmon::client::kMetricsContentType);
    EXPECT_EQ(r.body, "rdtmon_up 1\n");
    EXPECT_EQ(calls.load(), 1);
    // A query string is not part of the path.
    EXPECT_EQ(httpGet(url("/metrics?x=1")).status, 200);
}

TEST_F(HttpServer, HeadAnswersWithTheHeadersOfGet) {
    rdtmon::test::HttpReply r = httpRequest("HEAD", url("/metrics"));
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.contentType, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_THAT(r.headers, HasSubstr("Content-Length: 12\r\n"));
}

TEST_F(HttpServer, OtherPathsAre404WithoutAsking) {
    for (const char* path : {"/", "/metrics/", "/metric", "/favicon.ico", "/METRICS"}) {
        EXPECT_EQ(httpGet(url(path)).status, 404) << path;
    }
    EXPECT_EQ(calls.load(), 0);
}

TEST_F(HttpServer, OtherMethodsAre405WithAllow) {
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
        rdtmon::test::HttpReply r = httpRequest(method, url("/metrics"), {{"a", "b"}});
        EXPECT_EQ(r.status, 405) << method;
        EXPECT_THAT(r.headers, HasSubstr("Allow: GET, HEAD")) << method;
    }
    EXPECT_EQ(calls.load(), 0);
}

TEST(HttpServerErrors, AProducerThatThrowsGives500AndTheServerGoesOn) {
    bool fail = true;
    MetricsHttpServer server(parseListenAddress("127.0.0.1:0"), [&fail]() -> std::string {
        if (fail) {
            throw std::runtime_error("boom");
        }
        return "ok\n";
    });
    const std::string url = "http://" + server.boundAddress() + "/metrics";
    rdtmon::test::HttpReply r = httpGet(url);
    EXPECT_EQ(r.status, 500);
    EXPECT_THAT(r.body, HasSubstr("boom"));
    fail = false;
    EXPECT_EQ(httpGet(url).body, "ok\n");
}

TEST(HttpServerErrors, AnAddressInUseIsReportedByName) {
    MetricsHttpServer first(parseListenAddress("127.0.0.1:0"), [] { return std::string(); });
    try {
        MetricsHttpServer second(parseListenAddress(first.boundAddress()),
                                 [] { return std::string(); });
        FAIL() << "a second server bound " << first.boundAddress();
    } catch (const std::runtime_error& e) {
        EXPECT_THAT(e.what(), HasSubstr("cannot listen on " + first.boundAddress()));
    }
}

TEST(HttpServerIpv6, ServesOnIpv6Loopback) {
    std::unique_ptr<MetricsHttpServer> server;
    try {
        server = std::make_unique<MetricsHttpServer>(parseListenAddress("[::1]:0"),
                                                     [] { return std::string("v6\n"); });
    } catch (const std::runtime_error& e) {
        GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    EXPECT_THAT(server->boundAddress(), ::testing::StartsWith("[::1]:"));
    rdtmon::test::HttpReply r = httpGet("http://" + server->boundAddress() + "/metrics");
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body, "v6\n");
}

} // namespace
