-- tests/server/v1.sql - a store of schema version 1, written by the committed sfn (88e2ce9)
-- with `sfn run --db`: machine 'hello' with its SUCCEEDED execution 'first', machine
-- 'legacy-wait' with the RUNNING execution 'waiting' (killed in its 2 s Wait, so a
-- checkpoint is stored). server_test.py loads it and starts sfnd on it: migration 2.
PRAGMA application_id = 1936092772;
PRAGMA user_version = 1;
BEGIN TRANSACTION;
CREATE TABLE checkpoints (  execution_id INTEGER PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,  data TEXT NOT NULL);
INSERT INTO "checkpoints" VALUES(2,'{"version":1,"arn":"arn:aws:states:us-east-1:123456789012:execution:legacy-wait:waiting","name":"waiting","role_arn":"arn:aws:iam::123456789012:role/sfn-local","machine":"legacy-wait","input":{},"start_ms":1795319368061,"stop_ms":0,"status":"RUNNING","root":{"state":"W","phase":"WAIT","input_ref":"execution","entered":true,"last_event":2,"entered_event":2,"entered_ms":1795319368061,"retry_total":0,"retry_counts":[],"deadline":1795319370061,"eff_ref":"execution"},"n_events":2,"clock_ms":1795319368061}');
CREATE TABLE executions (  id INTEGER PRIMARY KEY,  arn TEXT NOT NULL UNIQUE,  name TEXT NOT NULL,  machine_id INTEGER NOT NULL REFERENCES state_machines(id),  revision_id INTEGER NOT NULL REFERENCES state_machine_revisions(id),  status TEXT NOT NULL,  input TEXT NOT NULL,  output TEXT,  error TEXT,  cause TEXT,  start_ms INTEGER NOT NULL,  stop_ms INTEGER);
INSERT INTO "executions" VALUES(1,'arn:aws:states:us-east-1:123456789012:execution:hello:first','first',1,1,'SUCCEEDED','{"id":42,"customer":"Ada","items":[{"sku":"pen","qty":3},{"sku":"ink","qty":1}]}','{"orderId":"order-42","greeting":"Hello, Ada!","lines":[{"line":0,"sku":"pen","total":3},{"line":1,"sku":"ink","total":1}]}',NULL,NULL,1795319368040,1795319370040);
INSERT INTO "executions" VALUES(2,'arn:aws:states:us-east-1:123456789012:execution:legacy-wait:waiting','waiting',2,2,'RUNNING','{}',NULL,NULL,NULL,1795319368061,NULL);
CREATE TABLE history (  execution_id INTEGER NOT NULL REFERENCES executions(id) ON DELETE CASCADE,  id INTEGER NOT NULL,  type TEXT NOT NULL,  ts_ms INTEGER NOT NULL,  event TEXT NOT NULL,  PRIMARY KEY (execution_id, id)) WITHOUT ROWID;
INSERT INTO "history" VALUES(1,1,'ExecutionStarted',1795319368040,'{"timestamp":1795319368.04,"type":"ExecutionStarted","id":1,"previousEventId":0,"executionStartedEventDetails":{"roleArn":"arn:aws:iam::123456789012:role/sfn-local","input":"{\"id\":42,\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}]}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,2,'ChoiceStateEntered',1795319368040,'{"timestamp":1795319368.04,"type":"ChoiceStateEntered","id":2,"previousEventId":0,"stateEnteredEventDetails":{"name":"Validate","input":"{\"id\":42,\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}]}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,3,'ChoiceStateExited',1795319368040,'{"timestamp":1795319368.04,"type":"ChoiceStateExited","id":3,"previousEventId":2,"stateExitedEventDetails":{"name":"Validate","output":"{\"id\":42,\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}]}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,4,'PassStateEntered',1795319368040,'{"timestamp":1795319368.04,"type":"PassStateEntered","id":4,"previousEventId":3,"stateEnteredEventDetails":{"name":"Prepare","input":"{\"id\":42,\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}]}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,5,'PassStateExited',1795319368040,'{"timestamp":1795319368.04,"type":"PassStateExited","id":5,"previousEventId":4,"stateExitedEventDetails":{"name":"Prepare","output":"{\"orderId\":\"order-42\",\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}],\"count\":2}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,6,'ParallelStateEntered',1795319368040,'{"timestamp":1795319368.04,"type":"ParallelStateEntered","id":6,"previousEventId":5,"stateEnteredEventDetails":{"name":"Work","input":"{\"orderId\":\"order-42\",\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}],\"count\":2}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,7,'ParallelStateStarted',1795319368040,'{"timestamp":1795319368.04,"type":"ParallelStateStarted","id":7,"previousEventId":6}');
INSERT INTO "history" VALUES(1,8,'MapStateEntered',1795319368040,'{"timestamp":1795319368.04,"type":"MapStateEntered","id":8,"previousEventId":7,"stateEnteredEventDetails":{"name":"PriceItems","input":"{\"orderId\":\"order-42\",\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}],\"count\":2}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,9,'MapStateStarted',1795319368040,'{"timestamp":1795319368.04,"type":"MapStateStarted","id":9,"previousEventId":8,"mapStateStartedEventDetails":{"length":2}}');
INSERT INTO "history" VALUES(1,10,'MapIterationStarted',1795319368040,'{"timestamp":1795319368.04,"type":"MapIterationStarted","id":10,"previousEventId":9,"mapIterationStartedEventDetails":{"name":"PriceItems","index":0}}');
INSERT INTO "history" VALUES(1,11,'MapIterationStarted',1795319368040,'{"timestamp":1795319368.04,"type":"MapIterationStarted","id":11,"previousEventId":9,"mapIterationStartedEventDetails":{"name":"PriceItems","index":1}}');
INSERT INTO "history" VALUES(1,12,'WaitStateEntered',1795319368040,'{"timestamp":1795319368.04,"type":"WaitStateEntered","id":12,"previousEventId":7,"stateEnteredEventDetails":{"name":"Pause","input":"{\"orderId\":\"order-42\",\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}],\"count\":2}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,13,'PassStateEntered',1795319368040,'{"timestamp":1795319368.04,"type":"PassStateEntered","id":13,"previousEventId":10,"stateEnteredEventDetails":{"name":"Price","input":"{\"sku\":\"pen\",\"qty\":3,\"line\":0}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,14,'PassStateExited',1795319368040,'{"timestamp":1795319368.04,"type":"PassStateExited","id":14,"previousEventId":13,"stateExitedEventDetails":{"name":"Price","output":"{\"line\":0,\"sku\":\"pen\",\"total\":3}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,15,'PassStateEntered',1795319368040,'{"timestamp":1795319368.04,"type":"PassStateEntered","id":15,"previousEventId":11,"stateEnteredEventDetails":{"name":"Price","input":"{\"sku\":\"ink\",\"qty\":1,\"line\":1}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,16,'PassStateExited',1795319368040,'{"timestamp":1795319368.04,"type":"PassStateExited","id":16,"previousEventId":15,"stateExitedEventDetails":{"name":"Price","output":"{\"line\":1,\"sku\":\"ink\",\"total\":1}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,17,'MapIterationSucceeded',1795319368040,'{"timestamp":1795319368.04,"type":"MapIterationSucceeded","id":17,"previousEventId":14,"mapIterationSucceededEventDetails":{"name":"PriceItems","index":0}}');
INSERT INTO "history" VALUES(1,18,'MapIterationSucceeded',1795319368040,'{"timestamp":1795319368.04,"type":"MapIterationSucceeded","id":18,"previousEventId":16,"mapIterationSucceededEventDetails":{"name":"PriceItems","index":1}}');
INSERT INTO "history" VALUES(1,19,'MapStateSucceeded',1795319368040,'{"timestamp":1795319368.04,"type":"MapStateSucceeded","id":19,"previousEventId":18}');
INSERT INTO "history" VALUES(1,20,'MapStateExited',1795319368040,'{"timestamp":1795319368.04,"type":"MapStateExited","id":20,"previousEventId":19,"stateExitedEventDetails":{"name":"PriceItems","output":"[{\"line\":0,\"sku\":\"pen\",\"total\":3},{\"line\":1,\"sku\":\"ink\",\"total\":1}]","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,21,'WaitStateExited',1795319370040,'{"timestamp":1795319370.04,"type":"WaitStateExited","id":21,"previousEventId":12,"stateExitedEventDetails":{"name":"Pause","output":"{\"orderId\":\"order-42\",\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}],\"count\":2}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,22,'PassStateEntered',1795319370040,'{"timestamp":1795319370.04,"type":"PassStateEntered","id":22,"previousEventId":21,"stateEnteredEventDetails":{"name":"Greet","input":"{\"orderId\":\"order-42\",\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}],\"count\":2}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,23,'PassStateExited',1795319370040,'{"timestamp":1795319370.04,"type":"PassStateExited","id":23,"previousEventId":22,"stateExitedEventDetails":{"name":"Greet","output":"{\"message\":\"Hello, Ada!\"}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,24,'ParallelStateSucceeded',1795319370040,'{"timestamp":1795319370.04,"type":"ParallelStateSucceeded","id":24,"previousEventId":23}');
INSERT INTO "history" VALUES(1,25,'ParallelStateExited',1795319370040,'{"timestamp":1795319370.04,"type":"ParallelStateExited","id":25,"previousEventId":24,"stateExitedEventDetails":{"name":"Work","output":"{\"orderId\":\"order-42\",\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}],\"count\":2,\"result\":{\"lines\":[{\"line\":0,\"sku\":\"pen\",\"total\":3},{\"line\":1,\"sku\":\"ink\",\"total\":1}],\"greeting\":\"Hello, Ada!\"}}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,26,'PassStateEntered',1795319370040,'{"timestamp":1795319370.04,"type":"PassStateEntered","id":26,"previousEventId":25,"stateEnteredEventDetails":{"name":"Done","input":"{\"orderId\":\"order-42\",\"customer\":\"Ada\",\"items\":[{\"sku\":\"pen\",\"qty\":3},{\"sku\":\"ink\",\"qty\":1}],\"count\":2,\"result\":{\"lines\":[{\"line\":0,\"sku\":\"pen\",\"total\":3},{\"line\":1,\"sku\":\"ink\",\"total\":1}],\"greeting\":\"Hello, Ada!\"}}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,27,'PassStateExited',1795319370040,'{"timestamp":1795319370.04,"type":"PassStateExited","id":27,"previousEventId":26,"stateExitedEventDetails":{"name":"Done","output":"{\"orderId\":\"order-42\",\"greeting\":\"Hello, Ada!\",\"lines\":[{\"line\":0,\"sku\":\"pen\",\"total\":3},{\"line\":1,\"sku\":\"ink\",\"total\":1}]}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(1,28,'ExecutionSucceeded',1795319370040,'{"timestamp":1795319370.04,"type":"ExecutionSucceeded","id":28,"previousEventId":27,"executionSucceededEventDetails":{"output":"{\"orderId\":\"order-42\",\"greeting\":\"Hello, Ada!\",\"lines\":[{\"line\":0,\"sku\":\"pen\",\"total\":3},{\"line\":1,\"sku\":\"ink\",\"total\":1}]}","outputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(2,1,'ExecutionStarted',1795319368061,'{"timestamp":1795319368.061,"type":"ExecutionStarted","id":1,"previousEventId":0,"executionStartedEventDetails":{"roleArn":"arn:aws:iam::123456789012:role/sfn-local","input":"{}","inputDetails":{"truncated":false}}}');
INSERT INTO "history" VALUES(2,2,'WaitStateEntered',1795319368061,'{"timestamp":1795319368.061,"type":"WaitStateEntered","id":2,"previousEventId":0,"stateEnteredEventDetails":{"name":"W","input":"{}","inputDetails":{"truncated":false}}}');
CREATE TABLE state_machine_revisions (  id INTEGER PRIMARY KEY,  machine_id INTEGER NOT NULL REFERENCES state_machines(id) ON DELETE CASCADE,  revision INTEGER NOT NULL,  definition TEXT NOT NULL,  role_arn TEXT,  created_ms INTEGER NOT NULL,  UNIQUE (machine_id, revision));
INSERT INTO "state_machine_revisions" VALUES(1,1,1,'{
  "Comment": "A sample order workflow: Choice, Parallel, Map, Retry and Catch, a Wait, intrinsics.",
  "StartAt": "Validate",
  "States": {
    "Validate": {
      "Type": "Choice",
      "Choices": [
        {"Variable": "$.items[0]", "IsPresent": true, "Next": "Prepare"}
      ],
      "Default": "Reject"
    },
    "Prepare": {
      "Type": "Pass",
      "Parameters": {
        "orderId.$": "States.Format(''order-{}'', $.id)",
        "customer.$": "$.customer",
        "items.$": "$.items",
        "count.$": "States.ArrayLength($.items)"
      },
      "Next": "Work"
    },
    "Work": {
      "Type": "Parallel",
      "Branches": [
        {
          "StartAt": "PriceItems",
          "States": {
            "PriceItems": {
              "Type": "Map",
              "ItemsPath": "$.items",
              "MaxConcurrency": 2,
              "ItemSelector": {"sku.$": "$$.Map.Item.Value.sku", "qty.$": "$$.Map.Item.Value.qty", "line.$": "$$.Map.Item.Index"},
              "ItemProcessor": {
                "StartAt": "Price",
                "States": {
                  "Price": {
                    "Type": "Pass",
                    "Parameters": {"line.$": "$.line", "sku.$": "$.sku", "total.$": "States.MathAdd($.qty, 0)"},
                    "End": true
                  }
                }
              },
              "End": true
            }
          }
        },
        {
          "StartAt": "Pause",
          "States": {
            "Pause": {"Type": "Wait", "Seconds": 2, "Next": "Greet"},
            "Greet": {
              "Type": "Pass",
              "Parameters": {"message.$": "States.Format(''Hello, {}!'', $.customer)"},
              "End": true
            }
          }
        }
      ],
      "ResultSelector": {"lines.$": "$[0]", "greeting.$": "$[1].message"},
      "ResultPath": "$.result",
      "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Reject"}],
      "Next": "Done"
    },
    "Done": {
      "Type": "Pass",
      "Parameters": {"orderId.$": "$.orderId", "greeting.$": "$.result.greeting", "lines.$": "$.result.lines"},
      "End": true
    },
    "Reject": {"Type": "Fail", "Error": "Order.Invalid", "Cause": "the order has no items"}
  }
}
',NULL,1795319368044);
INSERT INTO "state_machine_revisions" VALUES(2,2,1,'{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 2, "Next": "Done"}, "Done": {"Type": "Pass", "Result": {"migrated": true}, "End": true}}}
',NULL,1795319368060);
CREATE TABLE state_machines (  id INTEGER PRIMARY KEY,  name TEXT NOT NULL UNIQUE,  arn TEXT NOT NULL UNIQUE,  type TEXT NOT NULL CHECK (type IN ('STANDARD', 'EXPRESS')),  role_arn TEXT,  created_ms INTEGER NOT NULL,  revision_id INTEGER);
INSERT INTO "state_machines" VALUES(1,'hello','arn:aws:states:us-east-1:123456789012:stateMachine:hello','STANDARD',NULL,1795319368044,1);
INSERT INTO "state_machines" VALUES(2,'legacy-wait','arn:aws:states:us-east-1:123456789012:stateMachine:legacy-wait','STANDARD',NULL,1795319368060,2);
CREATE INDEX executions_by_machine ON executions (machine_id, start_ms);
CREATE INDEX executions_by_name ON executions (name);
CREATE INDEX executions_running ON executions (status) WHERE status = 'RUNNING';
COMMIT;
