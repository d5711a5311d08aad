#pragma once

// --web.config.file: the web configuration file of Prometheus' exporter-toolkit, the format
// operators already write for node_exporter and the others:
//
//   tls_server_config:
//     cert_file: server.crt        # relative paths are relative to the file's directory
//     key_file: server.key
//     client_auth_type: RequireAndVerifyClientCert   # or VerifyClientCertIfGiven,
//     client_ca_file: ca.crt                         #    NoClientCert (the default)
//     min_version: TLS12           # TLS10 to TLS13; max_version too
//   basic_auth_users:
//     alice: $2y$10$...            # bcrypt
//
// As strict as exporter-toolkit: a key it does not know, or one it knows that rdtmon-exporter
// does not support (cipher_suites, http_server_config, ...), is an error naming the key, so
// that a setting is never silently ignored. Parsing only: the files named are read by
// TlsSettings.

#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace rdtmon::exporter {

class WebConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class ClientAuth { None, VerifyIfGiven, RequireAndVerify };
enum class TlsVersion { Tls10, Tls11, Tls12, Tls13 };

struct WebConfig {
    struct Tls {
        std::string certFile; // paths as given, or resolved against the file's directory
        std::string keyFile;
        std::string clientCaFile; // empty: none
        ClientAuth clientAuth = ClientAuth::None;
        TlsVersion minVersion = TlsVersion::Tls12; // exporter-toolkit's default
        TlsVersion maxVersion = TlsVersion::Tls13;
    };
    std::optional<Tls> tls;                            // none: plain HTTP
    std::map<std::string, std::string> basicAuthUsers; // user -> bcrypt hash; empty: no auth
};

// The text of a web configuration file; relative paths are taken relative to baseDir.
// Throws WebConfigError naming the key at fault. An empty file is a configuration with
// nothing in it (plain HTTP, no authentication), as in exporter-toolkit.
WebConfig parseWebConfig(const std::string& text, const std::string& baseDir);

// Reads and parses file; errors start with the file's name.
WebConfig loadWebConfig(const std::string& file);

// GnuTLS's priority string for the versions min to max ("NORMAL:-VERS-ALL:+VERS-TLS1.3:...").
std::string tlsPriorities(TlsVersion min, TlsVersion max);

const char* clientAuthName(ClientAuth a);

// A file the configuration is or names, read whole (a regular file of at most 1 MiB).
// Throws WebConfigError "cannot read WHAT PATH: REASON".
std::string readWebFile(const std::string& path, const std::string& what);

} // namespace rdtmon::exporter
