// AuditService (proto/dagd/v1/audit.proto) on gRPC's callback API: reads the audit log that the
// audit interceptor (access.h) writes. Handlers run on gRPC's threads and read the Store.
#ifndef DAGD_SERVER_AUDIT_SERVICE_H_
#define DAGD_SERVER_AUDIT_SERVICE_H_

#include "dagd/v1/audit.grpc.pb.h"
#include "server/access.h"
#include "storage/store.h"

namespace dagd::server {

class AuditServiceImpl final : public v1::AuditService::CallbackService {
 public:
  // Neither owned; both must outlive the service.
  AuditServiceImpl(storage::Store* store, AccessControl* access) : store_(store), access_(access) {}

  grpc::ServerUnaryReactor* ListAuditRecords(grpc::CallbackServerContext* context,
                                             const v1::ListAuditRecordsRequest* request,
                                             v1::ListAuditRecordsResponse* response) override;

 private:
  storage::Store* store_;
  AccessControl* access_;
};

}  // namespace dagd::server

#endif  // DAGD_SERVER_AUDIT_SERVICE_H_
