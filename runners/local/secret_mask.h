// SecretMasker: hides credential values (runners/local/credentials.h) in what an attempt prints,
// before any of it reaches a callback — and so the store, the logs and the event stream.
//
// A masker is built from the secret values of one attempt. It replaces each occurrence of
//   - a value of at least kMinSecretLength bytes (shorter values are left alone: masking "1" or
//     "yes" everywhere would wreck the output and hide nothing worth hiding),
//   - the value as a JSON string body — how Ansible's callbacks and its stdout print strings
//     (`"` → `\"`, `\` → `\\`, newline → `\n`, other control characters as `\u00XX`; and, for a
//     value with non-ASCII characters, the ensure_ascii form with `\uXXXX` escapes),
//   - for a multi-line value (a private key), each of its lines of at least kMinLineLength
//     bytes, trimmed of surrounding whitespace, raw and as a JSON string body,
// with kMask. Where several patterns match, the leftmost wins, and of those starting at the same
// byte the longest. Other encodings (base64, URL encoding, Python's repr of a value with quotes
// or backslashes, a value printed in pieces) are not recognised.
//
// Stream masks a stream that arrives in pieces (a pipe read by read()): it holds back the
// shortest tail of what it was given that could still be the start of a pattern, so the result
// of feeding the pieces and then Flush() is exactly Mask() of their concatenation, wherever the
// pieces were cut. Output that cannot start a secret is passed on at once.
//
// A SecretMasker is immutable after construction and may be shared between threads; a Stream is
// thread-compatible.
#ifndef DAGD_RUNNERS_LOCAL_SECRET_MASK_H_
#define DAGD_RUNNERS_LOCAL_SECRET_MASK_H_

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/run_state.h"

namespace dagd::runners::local {

class SecretMasker {
 public:
  static constexpr std::string_view kMask = "********";
  static constexpr size_t kMinSecretLength = 4;
  static constexpr size_t kMinLineLength = 8;

  // Masks nothing.
  SecretMasker() = default;
  // Masks `secrets` (duplicates and values too short to mask are fine).
  explicit SecretMasker(const std::vector<std::string>& secrets);

  // True if there is nothing to mask: Mask() returns its input.
  bool empty() const { return patterns_.empty(); }
  // What is replaced: every value and form listed above, longest first. For tests.
  const std::vector<std::string>& patterns() const { return patterns_; }

  // `text` with every pattern replaced by kMask.
  std::string Mask(std::string_view text) const;

  // Masks the texts of `result` an attempt produced: message, result and output parameters.
  void MaskResult(engine::AttemptResult* result) const;

  class Stream {
   public:
    // Masks with `masker`; a null one masks nothing.
    Stream() = default;
    explicit Stream(std::shared_ptr<const SecretMasker> masker) : masker_(std::move(masker)) {}
    // The next piece of the stream, masked: everything up to the last byte that might begin a
    // pattern completed by later pieces. May be empty.
    std::string Feed(std::string_view data);
    // The end of the stream: whatever was held back, masked. The stream starts over afterwards.
    std::string Flush();
    // Bytes held back so far (fewer than the longest pattern).
    size_t held() const { return held_.size(); }

   private:
    std::shared_ptr<const SecretMasker> masker_;
    std::string held_;
  };

 private:
  // Appends the masked form of a prefix of `text` to *out and returns that prefix's length. At
  // `end`, the prefix is all of `text`; otherwise it stops before the first byte where a pattern
  // might match given more bytes.
  size_t MaskPrefix(std::string_view text, bool end, std::string* out) const;

  std::vector<std::string> patterns_;
  std::array<bool, 256> first_bytes_{};  // the first bytes of patterns_
};

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_SECRET_MASK_H_
