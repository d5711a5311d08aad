// The label rules (common/Labels.h) and where the hook takes labels from: the CRI
// annotations of containerd and CRI-O (hook/OciState.h, criLabels).

#include "Errors.h"
#include "Labels.h"
#include "OciState.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <string>

namespace rdtmon {
namespace {

using test::expectError;

TEST(Labels, KeysAreOneTo63OfLowercaseDigitsAndUnderscore) {
    for (std::string key : {"pod", "namespace", "pod_uid", "a", "_", "0", "a_b_9"}) {
        EXPECT_TRUE(isValidLabelKey(key)) << key;
    }
    EXPECT_TRUE(isValidLabelKey(std::string(63, 'k')));
    for (std::string key :
         {"", "Pod", "pod-name", "pod.name", "pod name", "a/b", "\xc3\xa9", "a\n", "POD"}) {
        EXPECT_FALSE(isValidLabelKey(key)) << key;
    }
    EXPECT_FALSE(isValidLabelKey(std::string(64, 'k')));
    EXPECT_FALSE(isValidLabelKey(std::string("a\0b", 3)));
}

TEST(Labels, ValuesAreAtMost253BytesOfUtf8WithoutControlCharacters) {
    for (std::string v : {"", "web-7d9f", "kube-system", "3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c",
                          "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "a b", "\xc2\xa0"}) {
        EXPECT_EQ(labelValueProblem(v), "") << v;
    }
    EXPECT_EQ(labelValueProblem(std::string(253, 'v')), "");
    // 253 bytes counted as bytes, not characters: 126 two-byte characters plus one byte.
    std::string multi;
    for (int i = 0; i < 126; ++i) {
        multi += "\xc3\xa9";
    }
    EXPECT_EQ(labelValueProblem(multi + "x"), "");
    EXPECT_NE(labelValueProblem(multi + "xy"), "");
    EXPECT_NE(labelValueProblem(std::string(254, 'v')).find("254 bytes"), std::string::npos);

    struct Bad {
        std::string value;
        const char* mention;
    };
    const Bad bad[] = {
        {"a\nb", "control"},
        {"a\tb", "control"},
        {"\r", "control"},
        {std::string("a\0b", 3), "control"},
        {"\x1b[31m", "control"},
        {"\x7f", "control"},
        {"\xc2\x85", "control"},       // U+0085 NEL, a C1 control
        {"\xc2\x9f", "control"},       // U+009F
        {"\xff", "UTF-8"},             // never valid
        {"\xc0\xaf", "UTF-8"},         // overlong "/"
        {"\xe0\x80\xaf", "UTF-8"},     // overlong "/" in three bytes
        {"\xed\xa0\x80", "UTF-8"},     // a surrogate
        {"\xf4\x90\x80\x80", "UTF-8"}, // above U+10FFFF
        {"\xc3", "UTF-8"},             // truncated
        {"\xe2\x82", "UTF-8"},         // truncated
        {"\x80", "UTF-8"},             // a lone continuation byte
        {"\xc3\x28", "UTF-8"},         // a bad continuation byte
    };
    for (const Bad& b : bad) {
        std::string problem = labelValueProblem(b.value);
        EXPECT_NE(problem.find(b.mention), std::string::npos) << "\"" << problem << "\"";
    }
}

TEST(Labels, ValidateNamesTheLabelAndCapsTheCount) {
    Labels ok;
    for (int i = 0; i < 16; ++i) {
        ok["k" + std::to_string(i)] = "v";
    }
    EXPECT_NO_THROW(validateLabels(ok));
    EXPECT_NO_THROW(validateLabels({}));
    Labels many = ok;
    many["k16"] = "v";
    EXPECT_NE(expectError(ErrorKind::InvalidArgument, [&] { validateLabels(many); })
                  .find("too many labels: 17"),
              std::string::npos);
    std::string m = expectError(ErrorKind::InvalidArgument, [] {
        validateLabels({{"Bad\nKey", "v"}});
    });
    EXPECT_NE(m.find("invalid label key \"Bad\\x0aKey\""), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    m = expectError(ErrorKind::InvalidArgument, [] { validateLabels({{"pod", "a\nb"}}); });
    EXPECT_NE(m.find("label pod"), std::string::npos) << m;
}

OciState withAnnotations(std::map<std::string, std::string> annotations) {
    OciState st;
    st.id = "c1";
    st.annotations = std::move(annotations);
    return st;
}

TEST(CriLabels, ContainerdAnnotationNames) {
    Labels l = criLabels(withAnnotations({
        {"io.kubernetes.cri.sandbox-name", "web-7d9f"},
        {"io.kubernetes.cri.sandbox-namespace", "shop"},
        {"io.kubernetes.cri.container-name", "nginx"},
        {"io.kubernetes.cri.sandbox-uid", "3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c"},
        {"io.kubernetes.cri.container-type", "container"},
    }));
    EXPECT_EQ(l, (Labels{{"pod", "web-7d9f"},
                         {"namespace", "shop"},
                         {"container", "nginx"},
                         {"pod_uid", "3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c"}}));
}

TEST(CriLabels, CrioAnnotationNames) {
    Labels l = criLabels(withAnnotations({
        {"io.kubernetes.pod.name", "db-0"},
        {"io.kubernetes.pod.namespace", "data"},
        {"io.kubernetes.container.name", "postgres"},
        {"io.kubernetes.pod.uid", "u-1"},
        {"io.kubernetes.cri-o.ContainerType", "container"},
    }));
    EXPECT_EQ(l, (Labels{{"pod", "db-0"},
                         {"namespace", "data"},
                         {"container", "postgres"},
                         {"pod_uid", "u-1"}}));
}

TEST(CriLabels, ThePinAnnotationBecomesTheCountersLabelOnlyWhenItSaysPinned) {
    EXPECT_EQ(criLabels(withAnnotations(
                  {{"io.kubernetes.pod.name", "db-0"}, {"org.rdtmon.counters", "pinned"}})),
              (Labels{{"pod", "db-0"}, {"counters", "pinned"}}));
    for (const char* other : {"", "Pinned", "true", "turns"}) {
        EXPECT_TRUE(criLabels(withAnnotations({{"org.rdtmon.counters", other}})).empty()) << other;
    }
}

TEST(CriLabels, NoneAbsentOrEmptyGiveNoLabelAndContainerdWins) {
    EXPECT_TRUE(criLabels(withAnnotations({})).empty());
    EXPECT_TRUE(criLabels(withAnnotations({{"org.rdtmon.monitoring", "true"}})).empty());
    EXPECT_EQ(criLabels(withAnnotations(
                  {{"io.kubernetes.pod.name", ""}, {"io.kubernetes.pod.namespace", "ns"}})),
              (Labels{{"namespace", "ns"}}));
    EXPECT_EQ(criLabels(withAnnotations({{"io.kubernetes.cri.sandbox-name", "from-containerd"},
                                         {"io.kubernetes.pod.name", "from-crio"}})),
              (Labels{{"pod", "from-containerd"}}));
    EXPECT_EQ(criLabels(withAnnotations({{"io.kubernetes.cri.sandbox-name", ""},
                                         {"io.kubernetes.pod.name", "from-crio"}})),
              (Labels{{"pod", "from-crio"}}));
}

TEST(CriLabels, ABadValueNamesTheAnnotation) {
    std::string m = expectError(ErrorKind::InvalidArgument, [] {
        criLabels(withAnnotations({{"io.kubernetes.pod.name", std::string(300, 'p')}}));
    });
    EXPECT_NE(m.find("annotation io.kubernetes.pod.name (label pod)"), std::string::npos) << m;
    m = expectError(ErrorKind::InvalidArgument, [] {
        criLabels(withAnnotations({{"io.kubernetes.cri.sandbox-uid", "a\x01"}}));
    });
    EXPECT_NE(m.find("io.kubernetes.cri.sandbox-uid"), std::string::npos) << m;
}

} // namespace
} // namespace rdtmon
