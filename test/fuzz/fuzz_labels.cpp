// The label rules (common/Labels.h) and the hook's CRI annotation reader (criLabels). The
// input is split at NUL bytes into key, value, key, value, ...; the pairs are checked as
// labels and, as annotations, read by criLabels; the whole input is also parsed as an OCI
// state whose annotations criLabels reads. Invariants: only rdtmon::Error escapes; labels
// that validateLabels accepts keep every rule; what criLabels returns passes
// validateLabels.

#include "FuzzCommon.h"
#include "Labels.h"
#include "OciState.h"

#include <iterator>
#include <string>
#include <vector>

using namespace rdtmon;

namespace {

void checkAccepted(const Labels& labels, const char* who) {
    if (labels.size() > kMaxLabels) {
        fuzz::finding(who);
    }
    for (const auto& [key, value] : labels) {
        if (!isValidLabelKey(key) || !labelValueProblem(value).empty() ||
            value.size() > kMaxLabelValueBytes) {
            fuzz::finding(who);
        }
        for (unsigned char c : value) {
            if (c < 0x20 || c == 0x7f) {
                fuzz::finding(who);
            }
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = fuzz::asText(data, size);
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == '\0') {
            parts.emplace_back(text.substr(start, i - start));
            start = i + 1;
        }
    }
    Labels pairs;
    for (std::size_t i = 0; i + 1 < parts.size(); i += 2) {
        pairs[parts[i]] = parts[i + 1];
    }
    fuzz::expectOnlyRdtmonErrors("validateLabels", [&] {
        validateLabels(pairs);
        checkAccepted(pairs, "validateLabels accepted a label that breaks a rule");
    });
    for (const auto& [key, value] : pairs) {
        (void)isValidLabelKey(key);
        (void)labelValueProblem(value);
    }

    OciState st;
    st.id = "c";
    st.annotations = pairs;
    // The fuzzer cannot guess the annotation names: give each value under each of them too.
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const CriLabelSource& src = kCriLabelSources[i % std::size(kCriLabelSources)];
        st.annotations[std::string(i % 2 ? src.crio : src.containerd)] = parts[i];
    }
    fuzz::expectOnlyRdtmonErrors("criLabels", [&] {
        Labels l = criLabels(st);
        fuzz::expectOnlyRdtmonErrors("validateLabels(criLabels)", [&] { validateLabels(l); });
        checkAccepted(l, "criLabels returned a label that breaks a rule");
    });

    fuzz::expectOnlyRdtmonErrors("parseOciState + criLabels", [&] {
        OciState parsed = parseOciState(text, false);
        Labels l = criLabels(parsed);
        checkAccepted(l, "criLabels of a parsed state returned a label that breaks a rule");
    });
    return 0;
}
