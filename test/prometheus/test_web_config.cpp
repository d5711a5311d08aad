// --web.config.file without a server: the YAML of exporter-toolkit's web configuration
// parsed as strictly as exporter-toolkit does (each error names its key), relative paths
// taken from the file's directory, and the TLS files read and checked with GnuTLS.

#include "Subprocess.h"
#include "TempDir.h"
#include "TestUtil.h"
#include "TlsSettings.h"
#include "WebConfig.h"
#include "WebTestFiles.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <sys/stat.h>
#include <vector>

using namespace rdtmon::exporter;
using rdtmon::test::TempDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

// A well-formed bcrypt hash ("secret" at cost 4); parsing checks its form only.
const std::string kHash = "$2y$04$8nqxB2yH2mJ3sN1nBvGyVeT0Ww0V6m1B1gkEJbdj7x5F0Xr9nq8lW";

std::string parseError(const std::string& yaml) {
    try {
        parseWebConfig(yaml, "/etc/rdtmon");
    } catch (const WebConfigError& e) {
        return e.what();
    }
    return "no error";
}

TEST(WebConfig, AGoodFileWithEveryKeyItSupports) {
    const WebConfig c = parseWebConfig("tls_server_config:\n"
                                       "  cert_file: server.crt\n"
                                       "  key_file: /secure/server.key\n"
                                       "  client_auth_type: RequireAndVerifyClientCert\n"
                                       "  client_ca_file: ca/ca.crt\n"
                                       "  min_version: TLS13\n"
                                       "  max_version: TLS13\n"
                                       "basic_auth_users:\n"
                                       "  alice: " +
                                           kHash +
                                           "\n"
                                           "  bob: '" +
                                           kHash + "'\n",
                                       "/etc/rdtmon");
    ASSERT_TRUE(c.tls.has_value());
    EXPECT_EQ(c.tls->certFile, "/etc/rdtmon/server.crt");
    EXPECT_EQ(c.tls->keyFile, "/secure/server.key");
    EXPECT_EQ(c.tls->clientCaFile, "/etc/rdtmon/ca/ca.crt");
    EXPECT_EQ(c.tls->clientAuth, ClientAuth::RequireAndVerify);
    EXPECT_EQ(c.tls->minVersion, TlsVersion::Tls13);
    EXPECT_EQ(c.tls->maxVersion, TlsVersion::Tls13);
    EXPECT_EQ(c.basicAuthUsers,
              (std::map<std::string, std::string>{{"alice", kHash}, {"bob", kHash}}));
}

TEST(WebConfig, DefaultsAreExporterToolkits) {
    const WebConfig c =
        parseWebConfig("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "/d");
    ASSERT_TRUE(c.tls.has_value());
    EXPECT_EQ(c.tls->clientAuth, ClientAuth::None);
    EXPECT_EQ(c.tls->clientCaFile, "");
    EXPECT_EQ(c.tls->minVersion, TlsVersion::Tls12);
    EXPECT_EQ(c.tls->maxVersion, TlsVersion::Tls13);
    EXPECT_TRUE(c.basicAuthUsers.empty());
    EXPECT_EQ(tlsPriorities(c.tls->minVersion, c.tls->maxVersion),
              "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
}

TEST(WebConfig, PrioritiesFollowTheVersions) {
    EXPECT_EQ(tlsPriorities(TlsVersion::Tls13, TlsVersion::Tls13), "NORMAL:-VERS-ALL:+VERS-TLS1.3");
    EXPECT_EQ(tlsPriorities(TlsVersion::Tls10, TlsVersion::Tls12),
              "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0");
}

TEST(WebConfig, NothingInItIsPlainHttpWithoutAuth) {
    for (const char* text : {"", "# nothing\n", "{}\n", "tls_server_config:\n",
                             "tls_server_config: {}\nbasic_auth_users:\n"}) {
        const WebConfig c = parseWebConfig(text, "/d");
        EXPECT_FALSE(c.tls.has_value()) << text;
        EXPECT_TRUE(c.basicAuthUsers.empty()) << text;
    }
}

TEST(WebConfig, BasicAuthWithoutTls) {
    const WebConfig c = parseWebConfig("basic_auth_users:\n  alice: " + kHash + "\n", "/d");
    EXPECT_FALSE(c.tls.has_value());
    EXPECT_EQ(c.basicAuthUsers.size(), 1u);
}

TEST(WebConfig, EachErrorNamesWhatIsWrong) {
    const std::string tls = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"tls_config:\n  cert_file: a\n", "unknown key tls_config"},
        {tls + "  certfile: c\n", "unknown key tls_server_config.certfile"},
        {tls + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
         "tls_server_config.cipher_suites is not supported by rdtmon-exporter"},
        {tls + "  client_allowed_sans: [a]\n",
         "tls_server_config.client_allowed_sans is not supported"},
        {tls + "  prefer_server_cipher_suites: true\n",
         "tls_server_config.prefer_server_cipher_suites is not supported"},
        {"tls_server_config:\n  cert: PEM\n", "tls_server_config.cert is not supported"},
        {"http_server_config:\n  http2: false\n", "http_server_config is not supported"},
        {"rate_limit:\n  interval: 1s\n", "rate_limit is not supported"},
        {tls + "  client_auth_type: Bogus\n",
         "tls_server_config.client_auth_type: unknown value \"Bogus\""},
        {tls + "  client_auth_type: RequireAnyClientCert\n  client_ca_file: c\n",
         "RequireAnyClientCert is not supported"},
        {tls + "  client_auth_type: RequestClientCert\n", "RequestClientCert is not supported"},
        {tls + "  client_auth_type: RequireAndVerifyClientCert\n",
         "client_auth_type RequireAndVerifyClientCert needs client_ca_file"},
        {tls + "  client_auth_type: VerifyClientCertIfGiven\n",
         "client_auth_type VerifyClientCertIfGiven needs client_ca_file"},
        {tls + "  client_ca_file: c\n",
         "client_ca_file is set but client_auth_type is NoClientCert"},
        {tls + "  min_version: TLS14\n",
         "tls_server_config.min_version: unknown TLS version \"TLS14\""},
        {tls + "  max_version: tls12\n", "tls_server_config.max_version: unknown TLS version"},
        {tls + "  min_version: TLS13\n  max_version: TLS12\n", "max_version is below min_version"},
        {"tls_server_config:\n  key_file: b\n", "cert_file is missing"},
        {"tls_server_config:\n  cert_file: a\n", "key_file is missing"},
        {"tls_server_config:\n  cert_file: [a, b]\n  key_file: b\n",
         "tls_server_config.cert_file must be a single value"},
        {tls + "  cert_file: c\n", "tls_server_config.cert_file appears twice"},
        {"tls_server_config: yes\n", "tls_server_config is not a mapping"},
        {"basic_auth_users:\n  - alice\n", "basic_auth_users is not a mapping"},
        {"basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice: not a bcrypt hash"},
        {"basic_auth_users:\n  alice: '$1$abcdefgh$0123456789012345678901'\n",
         "basic_auth_users.alice: not a bcrypt hash"},
        {"basic_auth_users:\n  alice:\n", "basic_auth_users.alice: not a bcrypt hash"},
        {"basic_auth_users:\n  alice: " + kHash.substr(0, 59) + "\n",
         "basic_auth_users.alice: not a bcrypt hash"},
        {"basic_auth_users:\n  alice: " + kHash + "\n  alice: " + kHash + "\n",
         "basic_auth_users.alice appears twice"},
        {"basic_auth_users:\n  'a:b': " + kHash + "\n",
         "basic_auth_users.a:b: a user name with a colon"},
        {"basic_auth_users:\n  {x: 1}: " + kHash + "\n",
         "basic_auth_users: a key is not a plain name"},
        {"- tls_server_config\n", "not a YAML mapping"},
        {"hello\n", "not a YAML mapping"},
        {"tls_server_config:\n  cert_file: [a\n", "not valid YAML"},
        {"tls_server_config: {}\ntls_server_config: {}\n", "tls_server_config appears twice"},
    };
    for (const auto& [yaml, want] : cases) {
        EXPECT_THAT(parseError(yaml), HasSubstr(want)) << yaml;
    }
}

TEST(WebConfigFile, RelativePathsAreRelativeToTheFilesDirectory) {
    TempDir dir("rdtmon-webconfig");
    ASSERT_EQ(::mkdir(dir.file("conf").c_str(), 0755), 0);
    rdtmon::test::writeFile(dir.file("conf/web.yml"),
                            "tls_server_config:\n"
                            "  cert_file: server.crt\n"
                            "  key_file: ../keys/server.key\n"
                            "  client_auth_type: VerifyClientCertIfGiven\n"
                            "  client_ca_file: /srv/ca.crt\n");
    // The file named through a path with "." and ".." in it: the results are plain paths.
    const WebConfig c = loadWebConfig(dir.path() + "/./conf/../conf/web.yml");
    ASSERT_TRUE(c.tls.has_value());
    EXPECT_EQ(c.tls->certFile, dir.file("conf/server.crt"));
    EXPECT_EQ(c.tls->keyFile, dir.file("keys/server.key"));
    EXPECT_EQ(c.tls->clientCaFile, "/srv/ca.crt");
}

TEST(WebConfigFile, AMissingFileAndABadOneAreNamed) {
    try {
        loadWebConfig("/nonexistent/web.yml");
        FAIL() << "no error";
    } catch (const WebConfigError& e) {
        EXPECT_STREQ(e.what(), "cannot read web config file /nonexistent/web.yml: No such file or "
                               "directory");
    }
    TempDir dir("rdtmon-webconfig");
    rdtmon::test::writeFile(dir.file("web.yml"), "tls_server_config:\n  certfile: a\n");
    try {
        loadWebConfig(dir.file("web.yml"));
        FAIL() << "no error";
    } catch (const WebConfigError& e) {
        EXPECT_STREQ(e.what(), ("web config file " + dir.file("web.yml") +
                                ": unknown key tls_server_config.certfile")
                                   .c_str());
    }
    EXPECT_THROW(loadWebConfig(dir.path()), WebConfigError); // a directory
}

class TlsFiles : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = std::make_unique<TempDir>("rdtmon-tlsfiles");
        certs_ = rdtmon::test::makeTestCertificates(dir_->path());
    }
    static void TearDownTestSuite() { dir_.reset(); }
    static WebConfig::Tls tls(ClientAuth auth = ClientAuth::None) {
        WebConfig::Tls t;
        t.certFile = certs_.serverCert;
        t.keyFile = certs_.serverKey;
        t.clientAuth = auth;
        if (auth != ClientAuth::None) {
            t.clientCaFile = certs_.caCert;
        }
        return t;
    }
    static std::string error(const WebConfig::Tls& t) {
        try {
            loadTlsSettings(t);
        } catch (const WebConfigError& e) {
            return e.what();
        }
        return "no error";
    }
    // Made once for the suite: openssl takes a moment.
    static std::unique_ptr<TempDir> dir_;
    static rdtmon::test::TestCertificates certs_;
};
std::unique_ptr<TempDir> TlsFiles::dir_;
rdtmon::test::TestCertificates TlsFiles::certs_;

TEST_F(TlsFiles, ReadsAndChecksTheFiles) {
    const TlsSettings s = loadTlsSettings(tls(ClientAuth::RequireAndVerify));
    EXPECT_THAT(s.certPem, StartsWith("-----BEGIN CERTIFICATE-----"));
    EXPECT_THAT(s.keyPem, HasSubstr("PRIVATE KEY-----"));
    EXPECT_THAT(s.clientCaPem, StartsWith("-----BEGIN CERTIFICATE-----"));
    EXPECT_EQ(s.clientAuth, ClientAuth::RequireAndVerify);
    EXPECT_EQ(s.priorities, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
    // Without client certificates the CA is not read.
    EXPECT_EQ(loadTlsSettings(tls()).clientCaPem, "");
}

TEST_F(TlsFiles, AMissingOrUnreadableFileIsNamed) {
    WebConfig::Tls t = tls();
    t.certFile = dir_->file("nope.crt");
    EXPECT_EQ(error(t),
              "cannot read cert_file " + dir_->file("nope.crt") + ": No such file or directory");
    t = tls();
    t.keyFile = dir_->path();
    EXPECT_EQ(error(t), "cannot read key_file " + dir_->path() + ": not a regular file");
    t = tls(ClientAuth::VerifyIfGiven);
    t.clientCaFile = dir_->file("nope-ca.crt");
    EXPECT_THAT(error(t), StartsWith("cannot read client_ca_file " + dir_->file("nope-ca.crt")));
    // Root reads anything: the exporter's user (nobody here) does not read a 0600 key.
    t = tls();
    const std::string asNobody = rdtmon::test::runAsNobody([&] { return error(t); });
    EXPECT_THAT(asNobody, HasSubstr(": Permission denied")) << asNobody;
    EXPECT_THAT(asNobody, StartsWith("cannot read ")) << asNobody;
}

TEST_F(TlsFiles, AKeyThatIsNotTheCertificatesIsRefused) {
    WebConfig::Tls t = tls();
    t.keyFile = certs_.clientKey;
    EXPECT_THAT(error(t), StartsWith("cert_file " + certs_.serverCert + " with key_file " +
                                     certs_.clientKey + ": "));
    t = tls();
    t.certFile = certs_.serverKey; // no certificate in it
    EXPECT_THAT(error(t), StartsWith("cert_file " + certs_.serverKey));
}

TEST_F(TlsFiles, ACaFileWithoutACertificateIsRefused) {
    rdtmon::test::writeFile(dir_->file("empty-ca.crt"), "not a certificate\n");
    WebConfig::Tls t = tls(ClientAuth::RequireAndVerify);
    t.clientCaFile = dir_->file("empty-ca.crt");
    EXPECT_THAT(error(t), StartsWith("client_ca_file " + dir_->file("empty-ca.crt") + ": "));
}

} // namespace
