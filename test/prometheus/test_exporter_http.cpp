// rdtmon-exporter's HTTP side without a bus: the listen-address parser, and
// MetricsHttpServer with a fake producer answered over real loopback sockets (curl).

#include "Http.h"
#include "ListenAddress.h"
#include "MetricsHttpServer.h"
#include "MetricsText.h"
#include "SharedRead.h"
#include "TestUtil.h"
#include "UniqueFd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <vector>

using namespace rdtmon::exporter;
using rdtmon::test::httpGet;
using rdtmon::test::httpRequest;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

namespace {

// Clients that connect from a given loopback address, send the start of a request and
// then one header byte every 100 ms, never finishing it: a slowloris.
class Tricklers {
public:
    ~Tricklers() {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    void add(const std::string& fromIp, const ListenAddress& to) {
        rdtmon::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in src{};
        src.sin_family = AF_INET;
        ASSERT_EQ(::inet_pton(AF_INET, fromIp.c_str(), &src.sin_addr), 1) << fromIp;
        ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src), 0) << fromIp;
        ASSERT_EQ(
            ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to.addr), sizeof(sockaddr_in)),
            0);
        const std::string start = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        ASSERT_EQ(::send(fd.get(), start.data(), start.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(start.size()));
        fds_.push_back(std::move(fd));
    }
    void start() {
        thread_ = std::thread([this] {
            while (!stop_) {
                for (const rdtmon::UniqueFd& fd : fds_) {
                    (void)::send(fd.get(), "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                }
                std::this_thread::sleep_for(100ms);
            }
        });
    }
    // How many the server has not closed: a closed one reads EOF or an error at once.
    std::size_t open() const {
        std::size_t n = 0;
        for (const rdtmon::UniqueFd& fd : fds_) {
            pollfd p{fd.get(), POLLIN | POLLRDHUP, 0};
            if (::poll(&p, 1, 0) == 0) {
                ++n;
            }
        }
        return n;
    }

private:
    std::vector<rdtmon::UniqueFd> fds_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

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

// A server on a node address meets clients that never finish a request. Each connection
// has its own thread: 16 of them, from 16 addresses, hold 16 threads, and a scrape from
// another address is answered at once.
TEST(HttpServerUnderLoad, SixteenTricklingClientsDoNotLockOutAScrape) {
    MetricsHttpServer server(parseListenAddress("127.0.0.1:0"),
                             [] { return std::string("rdtmon_up 1\n"); });
    const ListenAddress to = parseListenAddress(server.boundAddress());
    Tricklers slow;
    for (int i = 0; i < 16; ++i) {
        ASSERT_NO_FATAL_FAILURE(slow.add("127.0.0." + std::to_string(2 + i), to));
    }
    slow.start();
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(slow.open(), 16u);
    const auto t0 = std::chrono::steady_clock::now();
    rdtmon::test::HttpReply r =
        httpRequest("GET", "http://" + server.boundAddress() + "/metrics", {}, 20s);
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body, "rdtmon_up 1\n");
    // Wide: a few ms on a quiet machine; the bound is that it does not wait for them.
    EXPECT_LT(std::chrono::steady_clock::now() - t0, rdtmon::test::scaledDeadline(5s));
}

// One address gets at most kMaxPerAddress connections; the rest are closed at once, and
// another address is still served.
TEST(HttpServerUnderLoad, OneAddressCannotTakeEverySlot) {
    MetricsHttpServer server(parseListenAddress("127.0.0.1:0"),
                             [] { return std::string("rdtmon_up 1\n"); });
    const ListenAddress to = parseListenAddress(server.boundAddress());
    Tricklers slow;
    for (int i = 0; i < 12; ++i) {
        ASSERT_NO_FATAL_FAILURE(slow.add("127.0.0.2", to));
    }
    EXPECT_TRUE(
        rdtmon::test::waitUntil([&] { return slow.open() == MetricsHttpServer::kMaxPerAddress; },
                                rdtmon::test::scaledDeadline(std::chrono::milliseconds(5000))))
        << slow.open();
    rdtmon::test::HttpReply r =
        httpRequest("GET", "http://" + server.boundAddress() + "/metrics", {}, 20s);
    EXPECT_EQ(r.status, 200) << r.error;
}

// Scrapes that come while a read runs wait for it and get its text: one read for all.
TEST(SharedRead, CallersThatArriveDuringAReadShareIt) {
    SharedRead shared;
    std::atomic<int> reads{0};
    std::atomic<bool> release{false};
    auto read = [&] {
        ++reads;
        while (!release) {
            std::this_thread::sleep_for(1ms);
        }
        return std::string("text ") + std::to_string(reads.load());
    };
    std::vector<std::string> got(5);
    std::vector<std::thread> threads;
    threads.emplace_back([&] { got[0] = shared.get(read); });
    ASSERT_TRUE(rdtmon::test::waitUntil([&] { return reads == 1; }, 10s));
    for (int i = 1; i < 5; ++i) {
        threads.emplace_back([&, i] { got[static_cast<std::size_t>(i)] = shared.get(read); });
    }
    ASSERT_TRUE(rdtmon::test::waitUntil([&] { return shared.waiting() == 4u; }, 10s));
    release = true;
    for (std::thread& t : threads) {
        t.join();
    }
    EXPECT_EQ(reads, 1);
    for (const std::string& g : got) {
        EXPECT_EQ(g, "text 1");
    }
    // The next caller reads again.
    EXPECT_EQ(shared.get(read), "text 2");
    EXPECT_EQ(shared.reads(), 2u);
}

} // namespace
