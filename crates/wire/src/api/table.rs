//! The APIs kafkit speaks, in one table that drives version negotiation, the guarded decoders
//! and [`AnyResponse`].

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::VersionRange;

use crate::guard::{decode_response, DecodeError, GuardError, GuardedResponse, Kind};

/// An API kafkit speaks, and the versions of it kafkit is willing to use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupportedApi {
    /// The API.
    pub key: ApiKey,
    /// The versions kafkit can use: within what kafka-protocol encodes and decodes, capped
    /// below versions that Kafka 4.1 marks unstable or that need features kafkit lacks.
    pub versions: VersionRange,
    /// Why [`versions`](Self::versions) stops below the newest stable version that
    /// kafka-protocol (Kafka 4.1.0's schemas) knows; `None` when it does not. The parity test
    /// (`api/parity.rs`) fails on a capped API without a reason and on a reason without a cap.
    pub capped: Option<&'static str>,
}

macro_rules! capped {
    () => {
        None
    };
    ($reason:literal) => {
        Some($reason)
    };
}

macro_rules! apis {
    ($($key:ident($min:literal..=$max:literal)$([$capped:literal])?: $request:ident => $response:ident,)*) => {
        /// Every API kafkit speaks, in API key order.
        pub const SUPPORTED: &[SupportedApi] = &[
            $(SupportedApi { key: ApiKey::$key, versions: VersionRange { min: $min, max: $max }, capped: capped!($($capped)?) },)*
        ];

        $(
            impl crate::guard::sealed::Sealed for $response {}
            impl GuardedResponse for $response {
                const API_KEY: ApiKey = ApiKey::$key;
            }
        )*

        /// A decoded response of any API in [`SUPPORTED`], for callers that pick the API at run
        /// time (see [`crate::guard::decode_any_response`]).
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum AnyResponse {
            $(
                #[doc = concat!("A `", stringify!($response), "`.")]
                $key($response),
            )*
        }

        impl AnyResponse {
            /// The API this response answers.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $(AnyResponse::$key(_) => ApiKey::$key,)*
                }
            }

            pub(crate) fn decode(api: ApiKey, version: i16, body: Bytes) -> Result<Self, DecodeError> {
                match api {
                    $(ApiKey::$key => decode_response::<$response>(version, body).map(AnyResponse::$key),)*
                    _ => Err(GuardError::NoSchema { api, kind: Kind::Response }.into()),
                }
            }
        }

        /// Calls `visitor` with every response type in the table (tests drive round trips with it).
        #[cfg(test)]
        pub(crate) fn visit_responses<V: ResponseVisitor>(visitor: &mut V) {
            $(visitor.visit::<$response>();)*
        }

        /// Calls `visitor` with every request type in the table.
        #[cfg(test)]
        pub(crate) fn visit_requests<V: RequestVisitor>(visitor: &mut V) {
            $(visitor.visit::<$request>();)*
        }
    };
}

/// Something done once per response type of the table.
#[cfg(test)]
pub(crate) trait ResponseVisitor {
    fn visit<R>(&mut self)
    where
        R: GuardedResponse
            + kafka_protocol::protocol::Encodable
            + Default
            + PartialEq
            + std::fmt::Debug;
}

/// Something done once per request type of the table.
#[cfg(test)]
pub(crate) trait RequestVisitor {
    fn visit<R>(&mut self)
    where
        R: kafka_protocol::protocol::Request + Default + PartialEq + std::fmt::Debug;
}

apis! {
    Produce(3..=12)["v13 names topics by ID only (KIP-516): kafkit's producer routes and reports by topic name and does not handle UNKNOWN_TOPIC_ID yet"]: ProduceRequest => ProduceResponse,
    Fetch(4..=17)["v18 only adds ReplicaState.HighWatermark, a follower-replica field; kept at 17 until a broker suite runs v18"]: FetchRequest => FetchResponse,
    ListOffsets(1..=10): ListOffsetsRequest => ListOffsetsResponse,
    Metadata(4..=13): MetadataRequest => MetadataResponse,
    OffsetCommit(2..=9): OffsetCommitRequest => OffsetCommitResponse,
    OffsetFetch(1..=9): OffsetFetchRequest => OffsetFetchResponse,
    FindCoordinator(0..=6): FindCoordinatorRequest => FindCoordinatorResponse,
    JoinGroup(0..=9): JoinGroupRequest => JoinGroupResponse,
    Heartbeat(0..=4): HeartbeatRequest => HeartbeatResponse,
    LeaveGroup(0..=5): LeaveGroupRequest => LeaveGroupResponse,
    SyncGroup(0..=5): SyncGroupRequest => SyncGroupResponse,
    DescribeGroups(0..=6): DescribeGroupsRequest => DescribeGroupsResponse,
    ListGroups(0..=5): ListGroupsRequest => ListGroupsResponse,
    SaslHandshake(0..=1): SaslHandshakeRequest => SaslHandshakeResponse,
    ApiVersions(0..=4): ApiVersionsRequest => ApiVersionsResponse,
    CreateTopics(2..=7): CreateTopicsRequest => CreateTopicsResponse,
    DeleteTopics(1..=6): DeleteTopicsRequest => DeleteTopicsResponse,
    DeleteRecords(0..=2): DeleteRecordsRequest => DeleteRecordsResponse,
    InitProducerId(0..=5): InitProducerIdRequest => InitProducerIdResponse,
    OffsetForLeaderEpoch(2..=4): OffsetForLeaderEpochRequest => OffsetForLeaderEpochResponse,
    AddPartitionsToTxn(0..=5): AddPartitionsToTxnRequest => AddPartitionsToTxnResponse,
    AddOffsetsToTxn(0..=4): AddOffsetsToTxnRequest => AddOffsetsToTxnResponse,
    EndTxn(0..=5): EndTxnRequest => EndTxnResponse,
    WriteTxnMarkers(1..=1): WriteTxnMarkersRequest => WriteTxnMarkersResponse,
    TxnOffsetCommit(0..=5): TxnOffsetCommitRequest => TxnOffsetCommitResponse,
    DescribeAcls(1..=3): DescribeAclsRequest => DescribeAclsResponse,
    CreateAcls(1..=3): CreateAclsRequest => CreateAclsResponse,
    DeleteAcls(1..=3): DeleteAclsRequest => DeleteAclsResponse,
    DescribeConfigs(1..=4): DescribeConfigsRequest => DescribeConfigsResponse,
    AlterConfigs(0..=2): AlterConfigsRequest => AlterConfigsResponse,
    DescribeLogDirs(1..=4): DescribeLogDirsRequest => DescribeLogDirsResponse,
    SaslAuthenticate(0..=2): SaslAuthenticateRequest => SaslAuthenticateResponse,
    CreatePartitions(0..=3): CreatePartitionsRequest => CreatePartitionsResponse,
    DeleteGroups(0..=2): DeleteGroupsRequest => DeleteGroupsResponse,
    ElectLeaders(0..=2): ElectLeadersRequest => ElectLeadersResponse,
    IncrementalAlterConfigs(0..=1): IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse,
    OffsetDelete(0..=0): OffsetDeleteRequest => OffsetDeleteResponse,
    DescribeCluster(0..=2): DescribeClusterRequest => DescribeClusterResponse,
    DescribeProducers(0..=0): DescribeProducersRequest => DescribeProducersResponse,
    DescribeTransactions(0..=0): DescribeTransactionsRequest => DescribeTransactionsResponse,
    ListTransactions(0..=2): ListTransactionsRequest => ListTransactionsResponse,
    ConsumerGroupHeartbeat(0..=1): ConsumerGroupHeartbeatRequest => ConsumerGroupHeartbeatResponse,
    ConsumerGroupDescribe(0..=1): ConsumerGroupDescribeRequest => ConsumerGroupDescribeResponse,
    DescribeTopicPartitions(0..=0): DescribeTopicPartitionsRequest => DescribeTopicPartitionsResponse,
}
