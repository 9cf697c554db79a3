#include "runners/local/secret_mask.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"

namespace dagd::runners::local {
namespace {

void AppendUnicodeEscape(uint32_t unit, std::string* out) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\u%04x", unit);
  out->append(buf);
}

// The body of the JSON string for `value`, as Python's json.dumps writes it (Ansible's callbacks
// and dagd's plugin use it): with ensure_ascii=False when `ascii_only` is false, else with every
// non-ASCII character as \uXXXX (UTF-16, lowercase hex). nullopt if `ascii_only` and `value` is
// not valid UTF-8 (Python would not have it as text either).
std::optional<std::string> JsonStringBody(std::string_view value, bool ascii_only) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      AppendUnicodeEscape(c, &out);
    } else if (c < 0x80 || !ascii_only) {
      out += static_cast<char>(c);
    } else {
      // Decode one UTF-8 sequence.
      size_t extra = 0;
      uint32_t code = 0;
      if ((c & 0xE0) == 0xC0) {
        extra = 1;
        code = c & 0x1F;
      } else if ((c & 0xF0) == 0xE0) {
        extra = 2;
        code = c & 0x0F;
      } else if ((c & 0xF8) == 0xF0) {
        extra = 3;
        code = c & 0x07;
      } else {
        return std::nullopt;
      }
      if (i + extra >= value.size()) return std::nullopt;  // cut short
      for (size_t k = 1; k <= extra; ++k) {
        const auto next = static_cast<unsigned char>(value[i + k]);
        if ((next & 0xC0) != 0x80) return std::nullopt;
        code = (code << 6) | (next & 0x3F);
      }
      i += extra;
      if (code >= 0x10000) {
        code -= 0x10000;
        AppendUnicodeEscape(0xD800 + (code >> 10), &out);
        AppendUnicodeEscape(0xDC00 + (code & 0x3FF), &out);
      } else {
        AppendUnicodeEscape(code, &out);
      }
    }
  }
  return out;
}

// `value` and its JSON forms, each if at least `min_length` bytes long.
void AddForms(std::string_view value, size_t min_length, std::set<std::string>* patterns) {
  if (value.size() < min_length) return;
  patterns->emplace(value);
  for (bool ascii_only : {false, true}) {
    std::optional<std::string> body = JsonStringBody(value, ascii_only);
    if (body.has_value()) patterns->insert(*std::move(body));
  }
}

}  // namespace

SecretMasker::SecretMasker(const std::vector<std::string>& secrets) {
  std::set<std::string> patterns;
  for (const std::string& secret : secrets) {
    AddForms(secret, kMinSecretLength, &patterns);
    if (secret.find('\n') == std::string::npos) continue;
    for (absl::string_view line : absl::StrSplit(secret, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      AddForms(std::string_view(line.data(), line.size()),
               std::max(kMinLineLength, kMinSecretLength), &patterns);
    }
  }
  patterns_.assign(patterns.begin(), patterns.end());
  std::stable_sort(patterns_.begin(), patterns_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& pattern : patterns_) {
    first_bytes_[static_cast<unsigned char>(pattern.front())] = true;
  }
}

size_t SecretMasker::MaskPrefix(std::string_view text, bool end, std::string* out) const {
  size_t copied = 0;  // text[0, copied) is in *out (masked)
  size_t p = 0;
  while (p < text.size()) {
    if (!first_bytes_[static_cast<unsigned char>(text[p])]) {
      ++p;
      continue;
    }
    const std::string_view rest = text.substr(p);
    size_t longest = 0;
    bool undecided = false;
    for (const std::string& pattern : patterns_) {
      if (pattern.size() <= rest.size()) {
        if (pattern.size() > longest && rest.substr(0, pattern.size()) == pattern) {
          longest = pattern.size();
        }
      } else if (!end && std::string_view(pattern).substr(0, rest.size()) == rest) {
        undecided = true;  // more bytes could complete this (longer) pattern
        break;
      }
    }
    if (undecided) break;
    if (longest == 0) {
      ++p;
      continue;
    }
    out->append(text.substr(copied, p - copied));
    out->append(kMask);
    p += longest;
    copied = p;
  }
  out->append(text.substr(copied, p - copied));
  return p;
}

std::string SecretMasker::Mask(std::string_view text) const {
  if (empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  MaskPrefix(text, /*end=*/true, &out);
  return out;
}

void SecretMasker::MaskResult(engine::AttemptResult* result) const {
  if (empty()) return;
  result->message = Mask(result->message);
  if (result->result.has_value()) result->result = Mask(*result->result);
  for (auto& [name, value] : result->parameters) value = Mask(value);
}

std::string SecretMasker::Stream::Feed(std::string_view data) {
  if (masker_ == nullptr || masker_->empty()) return std::string(data);
  std::string buffer = std::move(held_);
  buffer.append(data);
  std::string out;
  out.reserve(buffer.size());
  const size_t done = masker_->MaskPrefix(buffer, /*end=*/false, &out);
  held_ = buffer.substr(done);
  return out;
}

std::string SecretMasker::Stream::Flush() {
  std::string out;
  if (masker_ != nullptr) masker_->MaskPrefix(held_, /*end=*/true, &out);
  held_.clear();
  return out;
}

}  // namespace dagd::runners::local
