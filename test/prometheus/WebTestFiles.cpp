#include "WebTestFiles.h"

#include "Subprocess.h"
#include "TestUtil.h"

#include <crypt.h>

#include <memory>
#include <stdexcept>
#include <sys/stat.h>

namespace rdtmon::test {

namespace {

// The extensions of each certificate; the subjects come on the command line.
std::string opensslConfig(const std::vector<std::string>& serverIps) {
    std::string san = "DNS:localhost, IP:127.0.0.1";
    for (const std::string& ip : serverIps) {
        san += ", IP:";
        san += ip;
    }
    std::string c = "[req]\n"
                    "distinguished_name = dn\n"
                    "[dn]\n"
                    "[ca]\n"
                    "basicConstraints = critical, CA:TRUE\n"
                    "keyUsage = critical, keyCertSign, cRLSign\n"
                    "subjectKeyIdentifier = hash\n"
                    "[server]\n"
                    "basicConstraints = critical, CA:FALSE\n"
                    "keyUsage = critical, digitalSignature\n"
                    "extendedKeyUsage = serverAuth\n"
                    "authorityKeyIdentifier = keyid\n"
                    "subjectAltName = ";
    c += san;
    c += "\n"
         "[client]\n"
         "basicConstraints = critical, CA:FALSE\n"
         "keyUsage = critical, digitalSignature\n"
         "extendedKeyUsage = clientAuth\n";
    return c;
}

void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = runCommand(argv, {.timeout = std::chrono::seconds(60)});
    if (r.exitCode != 0) {
        std::string cmd;
        for (const std::string& a : argv) {
            cmd += a;
            cmd += ' ';
        }
        throw std::runtime_error("failed: " + cmd + "\n" + r.out + r.err);
    }
}

const std::vector<std::string> kNewKey = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                          "-nodes"};

// A key and a certificate signing request for subject.
void newRequest(const std::string& cnf, const std::string& key, const std::string& csr,
                const std::string& subject) {
    std::vector<std::string> args = {"req", "-new", "-config", cnf, "-subj", subject};
    args.insert(args.end(), kNewKey.begin(), kNewKey.end());
    args.insert(args.end(), {"-keyout", key, "-out", csr});
    openssl(args);
}

void chmodOrThrow(const std::string& path, mode_t mode) {
    if (::chmod(path.c_str(), mode) != 0) {
        throw std::runtime_error("chmod " + path);
    }
}

} // namespace

TestCertificates makeTestCertificates(const std::string& dir,
                                      const std::vector<std::string>& serverIps) {
    TestCertificates c;
    auto path = [&](const char* name) { return dir + "/" + name; };
    const std::string cnf = path("openssl.cnf");
    writeFile(cnf, opensslConfig(serverIps));
    c.caCert = path("ca.crt");
    c.caKey = path("ca.key");
    std::vector<std::string> ca = {"req", "-x509", "-config", cnf,     "-extensions",
                                   "ca",  "-days", "2",       "-subj", "/CN=rdtmon test CA"};
    ca.insert(ca.end(), kNewKey.begin(), kNewKey.end());
    ca.insert(ca.end(), {"-keyout", c.caKey, "-out", c.caCert});
    openssl(ca);

    auto signedBy = [&](const std::string& name, const std::string& subject,
                        const std::string& section, std::string& cert, std::string& key) {
        key = path((name + ".key").c_str());
        cert = path((name + ".crt").c_str());
        const std::string csr = path((name + ".csr").c_str());
        newRequest(cnf, key, csr, subject);
        openssl({"x509", "-req", "-in", csr, "-CA", c.caCert, "-CAkey", c.caKey, "-CAcreateserial",
                 "-CAserial", path("ca.srl"), "-days", "2", "-extfile", cnf, "-extensions", section,
                 "-out", cert});
    };
    signedBy("server", "/CN=rdtmon-exporter", "server", c.serverCert, c.serverKey);
    signedBy("client", "/CN=prometheus", "client", c.clientCert, c.clientKey);

    c.strangerCert = path("stranger.crt");
    c.strangerKey = path("stranger.key");
    std::vector<std::string> stranger = {"req",    "-x509", "-config", cnf,     "-extensions",
                                         "client", "-days", "2",       "-subj", "/CN=stranger"};
    stranger.insert(stranger.end(), kNewKey.begin(), kNewKey.end());
    stranger.insert(stranger.end(), {"-keyout", c.strangerKey, "-out", c.strangerCert});
    openssl(stranger);
    return c;
}

std::string bcryptHash(const std::string& password, unsigned cost, const std::string& prefix) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn(prefix.c_str(), cost, nullptr, 0, salt, sizeof salt) == nullptr) {
        throw std::runtime_error("crypt_gensalt_rn " + prefix);
    }
    auto data = std::make_unique<crypt_data>();
    const char* hash = crypt_rn(password.c_str(), salt, data.get(), sizeof *data);
    if (hash == nullptr) {
        throw std::runtime_error("crypt_rn " + std::string(salt));
    }
    return hash;
}

WebConfigFiles makeWebConfig(const std::string& dir, const std::vector<std::string>& serverIps,
                             const std::map<std::string, std::string>& users,
                             const WebConfigOptions& options) {
    WebConfigFiles files;
    std::string yaml;
    if (options.tls) {
        files.certs = makeTestCertificates(dir, serverIps);
        yaml += "tls_server_config:\n"
                "  cert_file: server.crt\n"
                "  key_file: server.key\n";
        if (!options.clientAuthType.empty()) {
            yaml += "  client_auth_type: " + options.clientAuthType + "\n";
            yaml += "  client_ca_file: ca.crt\n";
        }
        if (!options.minVersion.empty()) {
            yaml += "  min_version: " + options.minVersion + "\n";
        }
    }
    if (!users.empty()) {
        yaml += "basic_auth_users:\n";
        for (const auto& [user, password] : users) {
            yaml += "  " + user + ": " + bcryptHash(password, options.bcryptCost) + "\n";
            const std::string file = dir + "/" + user + ".password";
            writeFile(file, password);
            files.passwordFiles[user] = file;
        }
    }
    yaml += options.extraYaml;
    files.configFile = dir + "/web-config.yml";
    writeFile(files.configFile, yaml);

    const mode_t fileMode = options.readableByAll ? 0644 : 0600;
    for (const std::string& f :
         {files.configFile, files.certs.caCert, files.certs.serverCert, files.certs.serverKey,
          files.certs.clientCert, files.certs.clientKey, files.certs.strangerCert,
          files.certs.strangerKey}) {
        if (!f.empty()) {
            chmodOrThrow(f, fileMode);
        }
    }
    for (const auto& [user, file] : files.passwordFiles) {
        chmodOrThrow(file, fileMode);
    }
    if (!files.certs.caKey.empty()) {
        chmodOrThrow(files.certs.caKey, 0600);
    }
    if (options.readableByAll) {
        chmodOrThrow(dir, 0755);
    }
    return files;
}

} // namespace rdtmon::test
