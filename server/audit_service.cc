#include "server/audit_service.h"

#include <google/protobuf/util/time_util.h>

#include "server/convert.h"

namespace dagd::server {

grpc::ServerUnaryReactor* AuditServiceImpl::ListAuditRecords(
    grpc::CallbackServerContext* context, const v1::ListAuditRecordsRequest* request,
    v1::ListAuditRecordsResponse* response) {
  using google::protobuf::util::TimeUtil;
  absl::StatusOr<Caller> caller = access_->Admit(context, "/dagd.v1.AuditService/ListAuditRecords");
  if (!caller.ok()) return Done(context, caller.status());
  storage::AuditFilter filter;
  // Records without a namespace (calls refused before their target was known) need admin in
  // every namespace: scope().all, where namespaces stays empty.
  filter.namespaces = caller->scope().namespaces;
  if (!request->namespace_().empty()) {
    if (auto st = caller->Authorize(request->namespace_(), ""); !st.ok()) return Done(context, st);
    filter.namespaces = {request->namespace_()};
  }
  filter.principal = request->principal();
  filter.target = request->target();
  filter.method = request->method();
  if (request->has_since()) filter.since_ms = TimeUtil::TimestampToMilliseconds(request->since());
  if (request->has_until()) filter.until_ms = TimeUtil::TimestampToMilliseconds(request->until());
  filter.failed_only = request->failed_only();
  filter.limit = request->page_size() > 0 ? std::min(request->page_size(), 1000) : 100;
  filter.page_token = request->page_token();
  absl::StatusOr<storage::AuditPage> page = store_->ListAuditRecords(filter);
  if (!page.ok()) return Done(context, page.status());
  for (const storage::AuditRecord& record : page->records) {
    v1::AuditRecord* out = response->add_records();
    out->set_sequence(record.sequence);
    *out->mutable_time() = TimeUtil::MillisecondsToTimestamp(record.time_ms);
    out->set_principal(record.principal);
    out->set_auth_method(record.auth_method);
    out->set_method(record.method);
    out->set_namespace_(record.namespace_name);
    out->set_target(record.target);
    out->set_request_id(record.request_id);
    out->set_code(record.code);
    out->set_message(record.message);
    out->set_peer(record.peer);
  }
  response->set_next_page_token(page->next_page_token);
  return Done(context, absl::OkStatus());
}

}  // namespace dagd::server
