#pragma once

// Throwaway TLS and basic-auth material for tests of rdtmon-exporter's --web.config.file:
// a CA with a server and a client certificate made by the openssl command, bcrypt hashes
// made by libxcrypt, and the web configuration file that names them. Everything is
// written into a directory the caller owns (a TempDir), which removes it.

#include <map>
#include <string>
#include <vector>

namespace rdtmon::test {

// Paths of PEM files (EC P-256 keys, unencrypted; certificates valid from now for 2 days).
struct TestCertificates {
    std::string caCert; // the CA both certificates are signed by (Prometheus' ca_file)
    std::string caKey;
    std::string serverCert; // serverAuth; SANs DNS:localhost, IP:127.0.0.1 and the caller's
    std::string serverKey;
    std::string clientCert; // clientAuth, signed by the CA
    std::string clientKey;
    std::string strangerCert; // clientAuth, self-signed: a client the CA does not know
    std::string strangerKey;
};

// Makes them in dir (ca.crt, server.crt, client.crt, stranger.crt and their .key files).
// serverIps: IPv4 or IPv6 addresses added to the server certificate's IP SANs (the
// addresses Prometheus will scrape). Throws std::runtime_error with openssl's message.
TestCertificates makeTestCertificates(const std::string& dir,
                                      const std::vector<std::string>& serverIps = {});

// A bcrypt hash of password made here with crypt_gensalt_rn and crypt_rn. prefix "$2b$"
// (as mkpasswd makes) or "$2y$" (htpasswd); cost 4 keeps a test's checks at about a
// millisecond.
std::string bcryptHash(const std::string& password, unsigned cost = 4,
                       const std::string& prefix = "$2b$");

struct WebConfigOptions {
    bool tls = true;            // tls_server_config with server.crt/server.key (relative paths)
    std::string clientAuthType; // written when set; client_ca_file: ca.crt with it
    std::string minVersion;     // written when set ("TLS13")
    std::string extraYaml;      // appended as it is (top-level keys)
    unsigned bcryptCost = 4;    // 10 is what htpasswd -nBC 10 makes (about 50 ms a check)
    // The directory 0755 and its files 0644 but the CA's key: the tests run the exporter as
    // nobody. Off: every file 0600 and the directory as the caller made it.
    bool readableByAll = true;
};

struct WebConfigFiles {
    std::string configFile; // --web.config.file
    TestCertificates certs; // certs.caCert verifies the server (curl --cacert, ca_file)
    // user -> a file holding that user's password and nothing else (Prometheus'
    // basic_auth.password_file; mode 0600 unless readableByAll).
    std::map<std::string, std::string> passwordFiles;
};

// Writes dir/web-config.yml with basic_auth_users for users (name -> plain password,
// hashed at options.bcryptCost) and, with options.tls, the certificates of
// makeTestCertificates(dir, serverIps) in tls_server_config; returns the paths.
WebConfigFiles makeWebConfig(const std::string& dir, const std::vector<std::string>& serverIps,
                             const std::map<std::string, std::string>& users,
                             const WebConfigOptions& options = {});

} // namespace rdtmon::test
