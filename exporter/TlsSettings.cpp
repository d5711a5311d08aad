#include "TlsSettings.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <memory>

namespace rdtmon::exporter {

namespace {

struct CredentialsFree {
    void operator()(gnutls_certificate_credentials_t c) const {
        gnutls_certificate_free_credentials(c);
    }
};
using Credentials = std::unique_ptr<gnutls_certificate_credentials_st, CredentialsFree>;

struct PriorityFree {
    void operator()(gnutls_priority_t p) const { gnutls_priority_deinit(p); }
};

gnutls_datum_t datum(const std::string& s) {
    // GnuTLS reads the buffer only; its API takes a non-const pointer.
    return {reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
            static_cast<unsigned>(s.size())};
}

Credentials newCredentials() {
    gnutls_certificate_credentials_t c = nullptr;
    if (const int r = gnutls_certificate_allocate_credentials(&c); r < 0) {
        throw WebConfigError(std::string("GnuTLS: ") + gnutls_strerror(r));
    }
    return Credentials(c);
}

} // namespace

TlsSettings loadTlsSettings(const WebConfig::Tls& tls) {
    TlsSettings s;
    s.certPem = readWebFile(tls.certFile, "cert_file");
    s.keyPem = readWebFile(tls.keyFile, "key_file");
    s.clientAuth = tls.clientAuth;
    s.priorities = tlsPriorities(tls.minVersion, tls.maxVersion);

    // What libmicrohttpd will do with them at start, done here first for a clear message.
    Credentials creds = newCredentials();
    const gnutls_datum_t cert = datum(s.certPem);
    const gnutls_datum_t key = datum(s.keyPem);
    if (const int r = gnutls_certificate_set_x509_key_mem2(creds.get(), &cert, &key,
                                                           GNUTLS_X509_FMT_PEM, nullptr, 0);
        r < 0) {
        throw WebConfigError("cert_file " + tls.certFile + " with key_file " + tls.keyFile + ": " +
                             gnutls_strerror(r) +
                             " (both must be PEM, the key unencrypted and the certificate's)");
    }
    if (tls.clientAuth != ClientAuth::None) {
        s.clientCaPem = readWebFile(tls.clientCaFile, "client_ca_file");
        const gnutls_datum_t ca = datum(s.clientCaPem);
        const int n = gnutls_certificate_set_x509_trust_mem(creds.get(), &ca, GNUTLS_X509_FMT_PEM);
        if (n < 0) {
            throw WebConfigError("client_ca_file " + tls.clientCaFile + ": " + gnutls_strerror(n));
        }
        if (n == 0) {
            throw WebConfigError("client_ca_file " + tls.clientCaFile +
                                 ": no PEM certificate in it");
        }
    }
    gnutls_priority_t prio = nullptr;
    const char* errPos = nullptr;
    if (const int r = gnutls_priority_init(&prio, s.priorities.c_str(), &errPos); r < 0) {
        throw WebConfigError("the TLS versions asked for (" + s.priorities +
                             ") are refused by GnuTLS: " + gnutls_strerror(r));
    }
    std::unique_ptr<gnutls_priority_st, PriorityFree> keep(prio);
    return s;
}

} // namespace rdtmon::exporter
