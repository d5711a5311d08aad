#pragma once

// The TLS half of the web configuration made ready for libmicrohttpd: the certificate, key
// and client CA read into memory and checked with GnuTLS at start, so that a missing file,
// a key that does not match its certificate or a CA file without a certificate is a
// start-up error naming the file, not a server that fails every handshake. Files are read
// once: a renewed certificate takes a restart.

#include "WebConfig.h"

#include <string>

namespace rdtmon::exporter {

struct TlsSettings {
    std::string certPem;     // the server's chain, as in cert_file
    std::string keyPem;      // its key (unencrypted PEM)
    std::string clientCaPem; // empty unless client certificates are verified
    ClientAuth clientAuth = ClientAuth::None;
    std::string priorities; // GnuTLS priority string (the TLS versions)
};

// Throws WebConfigError naming the file or the setting at fault.
TlsSettings loadTlsSettings(const WebConfig::Tls& tls);

} // namespace rdtmon::exporter
