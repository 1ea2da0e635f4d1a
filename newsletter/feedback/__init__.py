"""What comes back from SES: payloads parsed, the bounce and complaint rules, SNS verification, the SQS poller."""
