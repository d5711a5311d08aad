// MetricsHttpServer with what --web.config.file turns on, without a bus: HTTPS through
// libmicrohttpd's GnuTLS, client certificates, basic auth and the logging of refusals,
// each seen by a real client (curl) over loopback.

#include "BasicAuth.h"
#include "Http.h"
#include "ListenAddress.h"
#include "LogLimiter.h"
#include "MetricsHttpServer.h"
#include "TempDir.h"
#include "TestUtil.h"
#include "TlsSettings.h"
#include "WebConfig.h"
#include "WebTestFiles.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

using namespace rdtmon::exporter;
using rdtmon::test::httpGet;
using rdtmon::test::HttpOptions;
using rdtmon::test::HttpReply;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// Lines a LogLimiter wrote, for the test to read.
class Lines {
public:
    LogLimiter::Sink sink() {
        return [this](const std::string& l) {
            std::lock_guard lock(mutex_);
            lines_.push_back(l);
        };
    }
    std::vector<std::string> get() const {
        std::lock_guard lock(mutex_);
        return lines_;
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

class Https : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = std::make_unique<rdtmon::test::TempDir>("rdtmon-https");
        certs_ = rdtmon::test::makeTestCertificates(dir_->path());
    }
    static void TearDownTestSuite() { dir_.reset(); }

    // A server with TLS as tls_server_config would give it, and basic auth for users.
    void start(ClientAuth clientAuth = ClientAuth::None, TlsVersion min = TlsVersion::Tls12,
               std::map<std::string, std::string> users = {}, bool tls = true) {
        MetricsHttpServer::Security security;
        if (tls) {
            WebConfig::Tls t;
            t.certFile = certs_.serverCert;
            t.keyFile = certs_.serverKey;
            t.clientAuth = clientAuth;
            t.minVersion = min;
            if (clientAuth != ClientAuth::None) {
                t.clientCaFile = certs_.caCert;
            }
            security.tls = loadTlsSettings(t);
        }
        if (!users.empty()) {
            auth_ = std::make_shared<BasicAuth>(std::move(users));
            security.auth = auth_;
            security.refusedLog = std::make_shared<LogLimiter>(refused_.sink());
        }
        security.serverLog = std::make_shared<LogLimiter>(serverLog_.sink());
        refusedLog_ = security.refusedLog;
        server_ = std::make_unique<MetricsHttpServer>(
            parseListenAddress("127.0.0.1:0"),
            [this] {
                ++calls_;
                return std::string("rdtmon_up 1\n");
            },
            security);
        url_ = (tls ? "https://" : "http://") + server_->boundAddress() + "/metrics";
    }
    HttpOptions trusted() const { return {.caFile = certs_.caCert}; }
    HttpOptions withCert(const std::string& cert, const std::string& key) const {
        HttpOptions o = trusted();
        o.certFile = cert;
        o.keyFile = key;
        return o;
    }
    HttpOptions withUser(const std::string& user, const std::string& password) const {
        HttpOptions o = trusted();
        o.user = user;
        o.password = password;
        return o;
    }

    static std::unique_ptr<rdtmon::test::TempDir> dir_;
    static rdtmon::test::TestCertificates certs_;
    std::atomic<int> calls_{0};
    Lines refused_;
    Lines serverLog_;
    std::shared_ptr<BasicAuth> auth_;
    std::shared_ptr<LogLimiter> refusedLog_;
    std::unique_ptr<MetricsHttpServer> server_;
    std::string url_;
};
std::unique_ptr<rdtmon::test::TempDir> Https::dir_;
rdtmon::test::TestCertificates Https::certs_;

TEST_F(Https, ServesTheTextToAClientThatTrustsTheCa) {
    start();
    HttpReply r = httpGet(url_, trusted());
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(r.body, "rdtmon_up 1\n");
    EXPECT_EQ(r.contentType, "text/plain; version=0.0.4; charset=utf-8");
    // The rest of the HTTP side is the same as without TLS.
    EXPECT_EQ(httpGet("https://" + server_->boundAddress() + "/", trusted()).status, 404);
    EXPECT_EQ(
        rdtmon::test::httpRequest("POST", url_, {{"a", "b"}}, std::chrono::seconds(20), trusted())
            .status,
        405);
}

TEST_F(Https, AClientThatDoesNotTrustTheCaRefusesTheServer) {
    start();
    HttpReply r = httpGet(url_);
    EXPECT_EQ(r.status, 0);
    EXPECT_THAT(r.error, HasSubstr("certificate"));
    EXPECT_EQ(calls_.load(), 0);
}

TEST_F(Https, PlainHttpOnTheTlsPortGetsNoAnswer) {
    start();
    const std::string plain = "http://" + server_->boundAddress() + "/metrics";
    for (int i = 0; i < 3; ++i) {
        HttpReply r = httpGet(plain);
        EXPECT_EQ(r.status, 0) << r.headers << r.body;
    }
    EXPECT_EQ(calls_.load(), 0);
    // The failed handshakes are logged, once for the three.
    EXPECT_TRUE(rdtmon::test::waitUntil([&] { return !serverLog_.get().empty(); },
                                        std::chrono::seconds(5)));
    const std::vector<std::string> lines = serverLog_.get();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_THAT(lines[0], HasSubstr("<4>rdtmon-exporter: a TLS handshake failed"));
    // And the server goes on.
    EXPECT_EQ(httpGet(url_, trusted()).status, 200);
}

TEST_F(Https, MinVersionRefusesOlderClients) {
    start(ClientAuth::None, TlsVersion::Tls13);
    HttpOptions tls12 = trusted();
    tls12.curlArgs = {"--tls-max", "1.2"};
    EXPECT_EQ(httpGet(url_, tls12).status, 0);
    EXPECT_EQ(httpGet(url_, trusted()).status, 200);

    // The default (TLS 1.2) takes a TLS 1.2 client and refuses a TLS 1.1 one.
    start();
    EXPECT_EQ(httpGet(url_, tls12).status, 200);
    HttpOptions tls11 = trusted();
    tls11.curlArgs = {"--tls-max", "1.1"};
    EXPECT_EQ(httpGet(url_, tls11).status, 0);
}

TEST_F(Https, RequiredClientCertificate) {
    start(ClientAuth::RequireAndVerify);
    EXPECT_EQ(httpGet(url_, trusted()).status, 0) << "answered without a client certificate";
    HttpReply ok = httpGet(url_, withCert(certs_.clientCert, certs_.clientKey));
    EXPECT_EQ(ok.status, 200) << ok.error;
    EXPECT_EQ(httpGet(url_, withCert(certs_.strangerCert, certs_.strangerKey)).status, 0)
        << "answered a certificate the CA did not sign";
    // Signed by the CA, but for servers only (extended key usage serverAuth).
    EXPECT_EQ(httpGet(url_, withCert(certs_.serverCert, certs_.serverKey)).status, 0)
        << "answered a certificate not meant for clients";
    EXPECT_EQ(calls_.load(), 1);
}

TEST_F(Https, ClientCertificateVerifiedIfGiven) {
    start(ClientAuth::VerifyIfGiven);
    EXPECT_EQ(httpGet(url_, trusted()).status, 200);
    EXPECT_EQ(httpGet(url_, withCert(certs_.clientCert, certs_.clientKey)).status, 200);
    EXPECT_EQ(httpGet(url_, withCert(certs_.strangerCert, certs_.strangerKey)).status, 0);
}

TEST_F(Https, BasicAuth401WithTheChallengeAndTheSameReplyWhateverIsWrong) {
    start(ClientAuth::None, TlsVersion::Tls12,
          {{"prometheus", rdtmon::test::bcryptHash("s3cret")}});
    std::vector<HttpReply> refused = {
        httpGet(url_, trusted()), httpGet(url_, withUser("prometheus", "wrong")),
        httpGet(url_, withUser("nobody", "s3cret")), httpGet(url_, withUser("prometheus", ""))};
    for (const HttpReply& r : refused) {
        EXPECT_EQ(r.status, 401) << r.error;
        EXPECT_THAT(r.headers, HasSubstr("WWW-Authenticate: Basic realm=\"rdtmon-exporter\"\r\n"));
        EXPECT_EQ(r.body, refused[0].body);
        EXPECT_EQ(r.contentType, refused[0].contentType);
    }
    EXPECT_EQ(calls_.load(), 0);
    HttpReply ok = httpGet(url_, withUser("prometheus", "s3cret"));
    EXPECT_EQ(ok.status, 200) << ok.error;
    EXPECT_EQ(ok.body, "rdtmon_up 1\n");
    // Every path wants the password, not only /metrics.
    EXPECT_EQ(httpGet("https://" + server_->boundAddress() + "/x", trusted()).status, 401);
}

TEST_F(Https, ScrapesWithTheRightPasswordAreCheckedByBcryptOnce) {
    start(ClientAuth::None, TlsVersion::Tls12,
          {{"prometheus", rdtmon::test::bcryptHash("s3cret")}});
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(httpGet(url_, withUser("prometheus", "s3cret")).status, 200);
    }
    EXPECT_EQ(auth_->bcryptRuns(), 1u);
}

TEST_F(Https, A401IsLoggedOnceNotPerRequest) {
    start(ClientAuth::None, TlsVersion::Tls12,
          {{"prometheus", rdtmon::test::bcryptHash("s3cret")}});
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(httpGet(url_, withUser("prometheus", "wrong")).status, 401);
    }
    std::vector<std::string> lines = refused_.get();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "<4>rdtmon-exporter: 401 for 127.0.0.1: wrong password for user "
                        "\"prometheus\"");
    EXPECT_THAT(lines[0], Not(HasSubstr("wrong\""))); // never the password
    EXPECT_EQ(httpGet(url_, withUser("mallory\x01\"", "x")).status, 401);
    EXPECT_EQ(httpGet(url_, trusted()).status, 401);
    // A right one is not refused and not logged.
    EXPECT_EQ(httpGet(url_, withUser("prometheus", "s3cret")).status, 200);
    EXPECT_EQ(refused_.get().size(), 1u);
    // What was held back comes out when the exporter stops: the last one and the count.
    refusedLog_->flush();
    lines = refused_.get();
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[1], "<4>rdtmon-exporter: 401 for 127.0.0.1: no basic-auth credentials (5 "
                        "more since the last line)");
}

TEST_F(Https, AClientsUserNameIsLoggedSafely) {
    start(ClientAuth::None, TlsVersion::Tls12,
          {{"prometheus", rdtmon::test::bcryptHash("s3cret")}});
    EXPECT_EQ(httpGet(url_, withUser("mal\"lory\x7f" + std::string(100, 'x'), "x")).status, 401);
    const std::vector<std::string> lines = refused_.get();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0], "<4>rdtmon-exporter: 401 for 127.0.0.1: unknown user \"mal\\\"lory\\x7f" +
                            std::string(64 - 9, 'x') + "\"..."); // 64 bytes of the name
}

TEST_F(Https, BasicAuthWithoutTls) {
    start(ClientAuth::None, TlsVersion::Tls12, {{"prometheus", rdtmon::test::bcryptHash("s3cret")}},
          false);
    EXPECT_EQ(httpGet(url_).status, 401);
    EXPECT_EQ(httpGet(url_, {.user = "prometheus", .password = "s3cret"}).status, 200);
}

TEST_F(Https, TheConnectionBoundsHoldWithTls) {
    start();
    EXPECT_EQ(MetricsHttpServer::kMaxConnections, 64u);
    // Several scrapes at once, each on its own connection and thread.
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            if (httpGet(url_, trusted()).status == 200) {
                ++ok;
            }
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    EXPECT_EQ(ok.load(), 4);
}

} // namespace
