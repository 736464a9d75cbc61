// A fast stand-in server for measuring clients at their own limit: any SubscribeLogs gets
// LINES entries "BENCH <i> <now_ns>" as fast as gRPC C++ sends them, GetJob says COMPLETED,
// GetLogs has nothing more.  It runs no job: it only answers what stream-logs asks.  It
// promises exact sequences in the "x-hodei-sequences" header, as the embedded server does.
//
//   native_server ADDRESS LINES   (ADDRESS: "unix:/path" or "127.0.0.1:port")
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "hodei.grpc.pb.h"

static long long now_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

class Logs final : public hodei::LogStreamService::Service {
 public:
  explicit Logs(long long lines) : lines_(lines) {}

  grpc::Status SubscribeLogs(grpc::ServerContext* context, const hodei::SubscribeLogsRequest* request,
                             grpc::ServerWriter<hodei::JobLogEntry>* writer) override {
    // Its sequences are exact (1, 2, 3…), and it says so as the embedded server does.
    context->AddInitialMetadata("x-hodei-sequences", "exact");
    hodei::JobLogEntry entry;
    entry.set_job_id(request->job_id());
    for (long long index = 0; index < lines_ && !context->IsCancelled(); ++index) {
      const long long stamp = now_ns();
      entry.set_line("BENCH " + std::to_string(index) + " " + std::to_string(stamp));
      entry.set_sequence(index + 1);
      entry.mutable_timestamp()->set_seconds(stamp / 1000000000LL);
      entry.mutable_timestamp()->set_nanos(static_cast<int>(stamp % 1000000000LL));
      if (!writer->Write(entry)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status GetLogs(grpc::ServerContext*, const hodei::GetLogsRequest*, hodei::GetLogsResponse*) override {
    return grpc::Status::OK;  // no entries, has_more false: the stream had them all
  }

 private:
  const long long lines_;
};

class Jobs final : public hodei::JobExecutionService::Service {
  grpc::Status GetJob(grpc::ServerContext*, const hodei::GetJobRequest* request,
                      hodei::GetJobResponse* response) override {
    response->mutable_job()->mutable_job_id()->set_value(request->job_id().value());
    response->set_status(hodei::JOB_STATUS_COMPLETED);
    auto* execution = response->add_executions();
    execution->set_job_status(hodei::JOB_STATUS_COMPLETED);
    execution->set_exit_code("0");
    return grpc::Status::OK;
  }
};

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: native_server ADDRESS LINES\n");
    return 2;
  }
  Logs logs(std::atoll(argv[2]));
  Jobs jobs;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials());
  builder.RegisterService(&logs);
  builder.RegisterService(&jobs);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "native_server: cannot listen on %s\n", argv[1]);
    return 1;
  }
  std::fprintf(stderr, "native_server: listening on %s\n", argv[1]);
  server->Wait();
  return 0;
}
